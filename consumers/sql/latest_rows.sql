-- The latest rows of a stream's table that the viewer may see and the filters match, in the
-- declared order (or only row %(id)s), shaped as the capture trigger writes rows (to_jsonb,
-- minus the columns excluded from capture) less the declared hidden columns, as JSON text.
-- A template: the table, access rule, filters and order come from the stream's declaration
-- only (consumers/reads.py fills them in with psycopg.sql); every value is a bound parameter.
SELECT (to_jsonb(t) - coalesce(
           (SELECT excluded_columns FROM cdc.capture_status WHERE table_name = %(table)s),
           '{{}}') - %(hidden)s::text[])::text AS row
FROM {table} AS t
WHERE {access}
  AND {filters}
  AND (%(id)s::bigint IS NULL OR t.id = %(id)s::bigint)
ORDER BY {order}
LIMIT %(limit)s
