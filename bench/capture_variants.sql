-- bench/capture.py --variants: other ways to capture, to attribute the cost of the shipped one.
-- Each is a copy of article_plain with its own triggers. cdc.capture_no_doorbell() and
-- cdc.capture_ring_always() are derived from the installed cdc.capture(), so they differ
-- from it in the doorbell only.

-- The change log with its columns, defaults and checks, without its indexes (the primary key
-- on id, the index on txid): what they cost a writer.
CREATE TABLE cdc.event_unindexed (LIKE cdc.event INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS);
-- And with one index where it has two: (txid, id) could serve both the reader's look-ups.
CREATE TABLE cdc.event_one_index (LIKE cdc.event INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS);
CREATE INDEX ON cdc.event_one_index (txid, id);

CREATE SEQUENCE cdc.relay_awake MINVALUE 0 MAXVALUE 1;  -- flag_doorbell's flag: 1 while awake
SELECT setval('cdc.relay_awake', 1);

DO $$
DECLARE
    copy     text;
    shipped  text := pg_get_functiondef('cdc.capture()'::regprocedure);
    doorbell text := $q$    IF NOT pg_try_advisory_xact_lock_shared(cdc.doorbell_key()) THEN
        PERFORM pg_notify('cdc', '');
    END IF;$q$;
BEGIN
    IF position(doorbell IN shipped) = 0 THEN
        RAISE EXCEPTION 'cdc.capture() no longer has the lines %: update bench/capture_variants.sql', doorbell;
    END IF;
    -- The change log only; a relay would find changes by polling.
    EXECUTE replace(replace(shipped, 'cdc.capture()', 'cdc.capture_no_doorbell()'), doorbell, '');
    -- The same, into each copy of the log: cdc.capture_<copy>() writes to cdc.event_<copy>.
    FOREACH copy IN ARRAY ARRAY['unindexed', 'one_index'] LOOP
        EXECUTE replace(
            replace(replace(shipped, 'cdc.capture()', format('cdc.capture_%s()', copy)), doorbell, ''),
            'INSERT INTO cdc.event ', format('INSERT INTO cdc.event_%s ', copy)
        );
    END LOOP;
    -- A lock-free doorbell's writer: instead of the lock, it looks at a flag that a relay
    -- would set while awake (a sequence's last value, read without a lock), and rings unless
    -- the flag says awake. Here it always does, so the relay reads by the timer.
    EXECUTE replace(
        replace(shipped, 'cdc.capture()', 'cdc.capture_flag()'),
        doorbell, $q$    IF pg_sequence_last_value('cdc.relay_awake') IS DISTINCT FROM 1 THEN
        PERFORM pg_notify('cdc', '');
    END IF;$q$
    );
    -- The trigger of migration 0001: every writer rings.
    EXECUTE replace(
        replace(shipped, 'cdc.capture()', 'cdc.capture_ring_always()'),
        doorbell, $q$    PERFORM pg_notify('cdc', '');$q$
    );
END
$$;

-- The change log without the row images (no to_jsonb): what building them costs.
CREATE FUNCTION cdc.capture_no_images() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cdc.event (table_name, op) VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, lower(TG_OP));
    RETURN NULL;
END
$$;

-- The least a trigger that writes a row per change can do: one constant into a table of one
-- column, without index or default. What any change log written by a trigger costs at least.
CREATE TABLE cdc.event_minimal (n int);
CREATE FUNCTION cdc.capture_minimal() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cdc.event_minimal VALUES (1);
    RETURN NULL;
END
$$;

-- A row trigger that does nothing: what calling a plpgsql trigger costs.
CREATE FUNCTION cdc.capture_nothing() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END
$$;

-- The doorbell alone, without the change log (not the shipped cdc.ring() of migration 0008,
-- which rings only while the relay sleeps: this one rings always).
CREATE FUNCTION cdc.ring_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cdc', '');
    RETURN NULL;
END
$$;

-- The doorbell, rung by at most one transaction at a time: one that finds another ringing
-- skips it (and the commit-time NOTIFY lock). It was running when that ringer committed, so
-- the reader's next snapshot lists it as in progress: the reader must then read again soon
-- on its own (cdc/log.py does not, today).
CREATE FUNCTION cdc.ring_one() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_try_advisory_xact_lock(2041, 0) THEN
        PERFORM pg_notify('cdc', '');
    END IF;
    RETURN NULL;
END
$$;

-- Inserts captured per statement from the transition table: one INSERT ... SELECT and one
-- doorbell per statement (inserts only: enough for this benchmark, not a full capture).
CREATE FUNCTION cdc.capture_statement() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cdc.event (table_name, op, new_row)
    SELECT TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 'insert', to_jsonb(n) FROM new_rows AS n;
    PERFORM pg_notify('cdc', '');
    RETURN NULL;
END
$$;

CREATE TABLE article_ring_always (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_capture AFTER INSERT OR UPDATE OR DELETE ON article_ring_always
    FOR EACH ROW EXECUTE FUNCTION cdc.capture_ring_always();

CREATE TABLE article_no_doorbell (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_capture AFTER INSERT OR UPDATE OR DELETE ON article_no_doorbell
    FOR EACH ROW EXECUTE FUNCTION cdc.capture_no_doorbell();

CREATE TABLE article_flag_doorbell (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_capture AFTER INSERT OR UPDATE OR DELETE ON article_flag_doorbell
    FOR EACH ROW EXECUTE FUNCTION cdc.capture_flag();

CREATE TABLE article_doorbell_only (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_ring AFTER INSERT OR UPDATE OR DELETE ON article_doorbell_only
    FOR EACH ROW EXECUTE FUNCTION cdc.ring_trigger();

CREATE TABLE article_statement_doorbell (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_capture AFTER INSERT OR UPDATE OR DELETE ON article_statement_doorbell
    FOR EACH ROW EXECUTE FUNCTION cdc.capture_no_doorbell();
CREATE TRIGGER cdc_ring AFTER INSERT OR UPDATE OR DELETE ON article_statement_doorbell
    FOR EACH STATEMENT EXECUTE FUNCTION cdc.ring_trigger();

CREATE TABLE article_one_ringer (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_capture AFTER INSERT OR UPDATE OR DELETE ON article_one_ringer
    FOR EACH ROW EXECUTE FUNCTION cdc.capture_no_doorbell();
CREATE TRIGGER cdc_ring AFTER INSERT OR UPDATE OR DELETE ON article_one_ringer
    FOR EACH STATEMENT EXECUTE FUNCTION cdc.ring_one();

CREATE TABLE article_statement_capture (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_capture AFTER INSERT ON article_statement_capture
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cdc.capture_statement();

CREATE TABLE article_unindexed_log (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_capture AFTER INSERT OR UPDATE OR DELETE ON article_unindexed_log
    FOR EACH ROW EXECUTE FUNCTION cdc.capture_unindexed();

CREATE TABLE article_one_index (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_capture AFTER INSERT OR UPDATE OR DELETE ON article_one_index
    FOR EACH ROW EXECUTE FUNCTION cdc.capture_one_index();

CREATE TABLE article_no_row_images (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_capture AFTER INSERT OR UPDATE OR DELETE ON article_no_row_images
    FOR EACH ROW EXECUTE FUNCTION cdc.capture_no_images();

CREATE TABLE article_minimal_log (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_capture AFTER INSERT OR UPDATE OR DELETE ON article_minimal_log
    FOR EACH ROW EXECUTE FUNCTION cdc.capture_minimal();

CREATE TABLE article_empty_trigger (LIKE article_plain INCLUDING ALL);
CREATE TRIGGER cdc_capture AFTER INSERT OR UPDATE OR DELETE ON article_empty_trigger
    FOR EACH ROW EXECUTE FUNCTION cdc.capture_nothing();
