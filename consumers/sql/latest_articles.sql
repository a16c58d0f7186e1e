-- The latest articles matching the filters, newest first (or only article %(id)s), shaped as the capture trigger
-- writes rows (to_jsonb, minus the columns excluded from capture), as JSON text.
SELECT (to_jsonb(a) - coalesce(
           (SELECT excluded_columns FROM cdc.capture_status WHERE table_name = 'public.article'),
           '{}'))::text AS row
FROM article AS a
WHERE (%(category)s::text IS NULL OR a.category = %(category)s::text)
  AND (%(source)s::text IS NULL OR a.source = %(source)s::text)
  AND (%(id)s::bigint IS NULL OR a.id = %(id)s::bigint)
ORDER BY a.published_at DESC, a.id DESC
LIMIT %(limit)s
