-- The latest posts matching the filters that %(viewer_id)s may see (public ones, and their
-- own private ones), newest first (or only post %(id)s), shaped as the capture trigger
-- writes rows, as JSON text.
SELECT (to_jsonb(p) - coalesce(
           (SELECT excluded_columns FROM cdc.capture_status WHERE table_name = 'public.post'),
           '{}'))::text AS row
FROM post AS p
WHERE (p.visibility = 'public' OR p.author_id = %(viewer_id)s::bigint)
  AND (%(author_id)s::bigint IS NULL OR p.author_id = %(author_id)s::bigint)
  AND (%(visibility)s::text IS NULL OR p.visibility = %(visibility)s::text)
  AND (%(id)s::bigint IS NULL OR p.id = %(id)s::bigint)
ORDER BY p.created_at DESC, p.id DESC
LIMIT %(limit)s
