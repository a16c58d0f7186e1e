-- 0001: the change log and the capture trigger.
--
-- Every change to a tracked table is written to cdc.event by an AFTER ROW trigger, in the
-- writer's own transaction: it commits or rolls back with the row. The trigger then rings a
-- doorbell, NOTIFY cdc with a constant payload. Postgres folds identical notifications within
-- a transaction, so a 10,000-row insert rings once; and the row never rides in the payload
-- (NOTIFY stops at 8000 bytes, rows don't).
--
-- Apply with: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f migrations_sql/0001_cdc_schema.sql

CREATE SCHEMA cdc;

CREATE TABLE cdc.event (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writer's top-level transaction: the reader compares it with snapshots to read
    -- in commit order (docs/architecture.md, "Reading in commit order").
    txid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    table_name  text        NOT NULL,  -- schema-qualified: 'public.article'
    op          text        NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    new_row     jsonb,                 -- NULL for delete
    old_row     jsonb,                 -- NULL for insert
    captured_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX event_txid ON cdc.event (txid);

COMMENT ON TABLE cdc.event IS
    'One row per captured change, written by cdc.capture() in the writer''s transaction.';

-- The generic trigger function. Its arguments (TG_ARGV) name the columns that never leave
-- the database: they are removed from both row images before anything is written.
CREATE FUNCTION cdc.capture() RETURNS trigger
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

    PERFORM pg_notify('cdc', '');
    RETURN NULL;
END
$$;

-- The hash stamped on each installed trigger: it changes whenever the trigger's definition
-- (events, excluded columns) or the capture function's body changes.
CREATE FUNCTION cdc.trigger_hash(tbl regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'cdc:' || md5(pg_get_triggerdef(t.oid) || pg_get_functiondef('cdc.capture()'::regprocedure))
    FROM pg_trigger t
    WHERE t.tgrelid = tbl AND t.tgname = 'cdc_capture'
$$;

-- Put a table under capture (or re-install its trigger after cdc.capture changed):
--     SELECT cdc.track('public.article');
--     SELECT cdc.track('public.customer', excluded_columns => '{password_hash}');
CREATE FUNCTION cdc.track(tbl regclass, excluded_columns text[] DEFAULT '{}') RETURNS text
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
    EXECUTE format('COMMENT ON TRIGGER cdc_capture ON %s IS %L', tbl, cdc.trigger_hash(tbl));
    RETURN cdc.trigger_hash(tbl);
END
$$;

CREATE FUNCTION cdc.untrack(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS cdc_capture ON %s', tbl);
END
$$;

-- Tables under capture, with the hash stamped at install and the hash their definition
-- has now: 'outdated' means re-run cdc.track() (manage.py cdc_status reports it).
CREATE VIEW cdc.capture_status AS
SELECT
    n.nspname || '.' || c.relname                      AS table_name,
    array_remove(string_to_array(encode(t.tgargs, 'escape'), '\000'), '')
                                                       AS excluded_columns,
    obj_description(t.oid, 'pg_trigger')               AS installed_hash,
    cdc.trigger_hash(t.tgrelid)                        AS expected_hash,
    t.tgenabled <> 'D'                                 AS enabled
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE t.tgname = 'cdc_capture' AND NOT t.tgisinternal;
