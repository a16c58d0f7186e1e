-- 0008: TRUNCATE is captured, the doorbell is a function of its own, the ticker is tracked.
--
-- TRUNCATE fires no row trigger: without a statement trigger a truncated table leaves every
-- page showing rows that no longer exist. cdc.track() now installs, beside the row trigger
-- cdc_capture, the statement trigger cdc_truncate, which writes one event with op 'truncate'
-- and no row images: a reader starts the table's streams over (docs/protocol.md, `reset`).
--
-- Apply with: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f migrations_sql/0008_truncate_and_ring.sql

ALTER TABLE cdc.event
    DROP CONSTRAINT event_op_check,
    ADD CONSTRAINT event_op_check CHECK (op IN ('insert', 'update', 'delete', 'truncate'));
COMMENT ON COLUMN cdc.event.new_row IS 'NULL for delete and truncate';
COMMENT ON COLUMN cdc.event.old_row IS 'NULL for insert and truncate';

-- The doorbell (0005, docs/architecture.md "The doorbell"), for every trigger that writes an
-- event: ring only while the relay sleeps, else hold the lock shared to the transaction's end.
CREATE FUNCTION cdc.ring() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock_shared(cdc.doorbell_key()) THEN
        PERFORM pg_notify('cdc', '');
    END IF;
END
$$;

CREATE FUNCTION cdc.capture_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cdc.event (table_name, op)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 'truncate');
    PERFORM cdc.ring();  -- after the insert, as in cdc.capture(): the transaction has its txid
    RETURN NULL;
END
$$;

-- The stamp of any of a table's triggers: its definition and its function's body. For
-- cdc_capture it is the value cdc.trigger_hash(tbl) always gave, so no stamp goes stale.
CREATE FUNCTION cdc.trigger_hash(tbl regclass, trigger name) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'cdc:' || md5(pg_get_triggerdef(t.oid) || pg_get_functiondef(t.tgfoid))
    FROM pg_trigger t
    WHERE t.tgrelid = tbl AND t.tgname = trigger
$$;

CREATE OR REPLACE FUNCTION cdc.trigger_hash(tbl regclass) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT cdc.trigger_hash(tbl, 'cdc_capture') $$;

-- The statement trigger alone (cdc.track() installs both; this migration adds it to the
-- tables already tracked without touching their row trigger).
CREATE FUNCTION cdc.track_truncate(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS cdc_truncate ON %s', tbl);
    EXECUTE format(
        'CREATE TRIGGER cdc_truncate AFTER TRUNCATE ON %s '
        'FOR EACH STATEMENT EXECUTE FUNCTION cdc.capture_truncate()',
        tbl
    );
    EXECUTE format('COMMENT ON TRIGGER cdc_truncate ON %s IS %L', tbl, cdc.trigger_hash(tbl, 'cdc_truncate'));
END
$$;

CREATE OR REPLACE FUNCTION cdc.track(tbl regclass, excluded_columns text[] DEFAULT '{}') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    unknown text[];
BEGIN
    SELECT array_agg(col) INTO unknown
    FROM unnest(excluded_columns) AS col
    WHERE NOT EXISTS (
        SELECT FROM pg_attribute
        WHERE attrelid = tbl AND attname = col AND attnum > 0 AND NOT attisdropped
    );
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'cdc.track(%): no such column(s): %', tbl, unknown;
    END IF;

    EXECUTE format('DROP TRIGGER IF EXISTS cdc_capture ON %s', tbl);
    EXECUTE format(
        'CREATE TRIGGER cdc_capture AFTER INSERT OR UPDATE OR DELETE ON %s '
        'FOR EACH ROW EXECUTE FUNCTION cdc.capture(%s)',
        tbl,
        (SELECT coalesce(string_agg(quote_literal(col), ', '), '') FROM unnest(excluded_columns) AS col)
    );
    EXECUTE format('COMMENT ON TRIGGER cdc_capture ON %s IS %L', tbl, cdc.trigger_hash(tbl, 'cdc_capture'));

    PERFORM cdc.track_truncate(tbl);
    RETURN cdc.trigger_hash(tbl, 'cdc_capture');
END
$$;

CREATE OR REPLACE FUNCTION cdc.untrack(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS cdc_capture ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS cdc_truncate ON %s', tbl);
END
$$;

-- One row per table under capture, as before, now with its truncate trigger's stamps too:
-- truncate_expected_hash is NULL when the table has no cdc_truncate (re-run cdc.track()).
CREATE OR REPLACE VIEW cdc.capture_status AS
SELECT
    n.nspname || '.' || c.relname                      AS table_name,
    array_remove(string_to_array(encode(t.tgargs, 'escape'), '\000'), '')
                                                       AS excluded_columns,
    obj_description(t.oid, 'pg_trigger')               AS installed_hash,
    cdc.trigger_hash(t.tgrelid)                        AS expected_hash,
    t.tgenabled <> 'D'                                 AS enabled,
    obj_description(tt.oid, 'pg_trigger')              AS truncate_installed_hash,
    cdc.trigger_hash(t.tgrelid, 'cdc_truncate')        AS truncate_expected_hash,
    coalesce(tt.tgenabled <> 'D', false)               AS truncate_enabled
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_trigger tt ON tt.tgrelid = t.tgrelid AND tt.tgname = 'cdc_truncate'
WHERE t.tgname = 'cdc_capture' AND NOT t.tgisinternal;

-- The tables under capture get their truncate trigger.
SELECT cdc.track_truncate(table_name::regclass) FROM cdc.capture_status;

-- The third stream's table (core/models.py Ticker): prices updated in place.
SELECT cdc.track('public.ticker');
