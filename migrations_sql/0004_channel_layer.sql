-- 0004: the side table of the project's channel layer (core/channel_layer.py,
-- docs/channel-layer.md). A message travels inside its NOTIFY payload when it fits; a bigger
-- one is stored here and the NOTIFY carries its id. Each receiving process reads the row once;
-- a message for one channel is deleted as it is read, a group message when it expires.
--
-- UNLOGGED: a row lives for the message's expiry (a minute by default) and is worth nothing
-- after a crash, when the notifications that name it are gone too; no WAL is written for it.
CREATE SCHEMA channel_layer;

CREATE UNLOGGED TABLE channel_layer.message (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body       bytea       NOT NULL,  -- the message, msgpack-encoded
    expires_at timestamptz NOT NULL
);

-- The layer deletes expired rows by this index (channel_layer_sweep in cdc/queries.sql).
CREATE INDEX message_expires_at ON channel_layer.message (expires_at);
