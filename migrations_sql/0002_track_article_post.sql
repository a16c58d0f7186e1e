-- 0002: put the product's two tables under capture. Needs 0001 and Django's core tables
-- (core/migrations/0001_initial.py creates article and post).

SELECT cdc.track('public.article');
SELECT cdc.track('public.post');
