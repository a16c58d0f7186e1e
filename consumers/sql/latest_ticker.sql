-- The ticker's symbols matching the filter, in symbol order (or only row %(id)s), shaped as
-- the capture trigger writes rows, as JSON text.
SELECT (to_jsonb(t) - coalesce(
           (SELECT excluded_columns FROM cdc.capture_status WHERE table_name = 'public.ticker'),
           '{}'))::text AS row
FROM ticker AS t
WHERE (%(symbol)s::text IS NULL OR t.symbol = %(symbol)s::text)
  AND (%(id)s::bigint IS NULL OR t.id = %(id)s::bigint)
ORDER BY t.symbol
LIMIT %(limit)s
