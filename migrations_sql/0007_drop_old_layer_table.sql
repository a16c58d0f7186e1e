-- 0007: the side table of the first channel layer (0004) is unused: the layer is the package
-- pglayer/ now, with its own tables (pglayer/schema.sql).

DROP SCHEMA IF EXISTS channel_layer CASCADE;
