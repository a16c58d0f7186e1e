-- 0005: ring the doorbell only while the relay sleeps.
--
-- A transaction that calls NOTIFY takes a lock at commit that is one for the whole server,
-- and holds it through its commit's WAL flush: concurrent writers that all ring commit one
-- at a time (docs/benchmarks.md, capture). So cdc.capture() now rings only while the leading
-- cdc_listen sleeps, which it shows by holding the doorbell lock, an advisory lock on
-- cdc.doorbell_key(). While the relay is awake the trigger takes that lock shared instead,
-- until its transaction ends: the relay, before it sleeps, takes the lock exclusively, which
-- waits for every such writer to end, and then reads once more. The protocol and its proof:
-- docs/architecture.md, "The doorbell"; the relay's side: cdc/doorbell.py.
--
-- Apply with: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f migrations_sql/0005_doorbell_lock.sql

-- The advisory lock's key ('cdc_bell' in ASCII), one for the trigger and the relay.
-- IMMUTABLE: the trigger's plan holds the constant, not a call.
CREATE FUNCTION cdc.doorbell_key() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 7161958568749788268::bigint $$;

-- Triggers whose stamp matched the old function: they run the new one as soon as it is
-- replaced (a trigger calls the function by its oid), so their stamp is renewed below.
CREATE TEMP TABLE cdc_current_triggers AS
SELECT table_name FROM cdc.capture_status WHERE installed_hash = expected_hash;

CREATE OR REPLACE FUNCTION cdc.capture() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    excluded text[] := coalesce(TG_ARGV, '{}');  -- NULL when the trigger has no arguments
    new_row jsonb;
    old_row jsonb;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        new_row := to_jsonb(NEW) - excluded;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        old_row := to_jsonb(OLD) - excluded;
    END IF;
    -- An update that changes nothing a reader may see is not a change to them.
    IF TG_OP = 'UPDATE' AND new_row = old_row THEN
        RETURN NULL;
    END IF;

    INSERT INTO cdc.event (table_name, op, new_row, old_row)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, lower(TG_OP), new_row, old_row);

    -- The doorbell, after the insert (this transaction has its txid by now). Relay awake:
    -- hold the lock shared to the end of this transaction, and let the relay, which cannot
    -- sleep before then, find the change. Relay asleep (the lock is held exclusively, or
    -- asked for): ring, NOTIFY cdc with a constant payload, folded per transaction.
    IF NOT pg_try_advisory_xact_lock_shared(cdc.doorbell_key()) THEN
        PERFORM pg_notify('cdc', '');
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    tbl text;
BEGIN
    FOR tbl IN SELECT table_name FROM cdc_current_triggers LOOP
        EXECUTE format('COMMENT ON TRIGGER cdc_capture ON %s IS %L', tbl, cdc.trigger_hash(tbl::regclass));
    END LOOP;
END
$$;

DROP TABLE cdc_current_triggers;
