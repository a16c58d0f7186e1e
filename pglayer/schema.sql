-- The Postgres channel layer's tables (pglayer/, docs/channel-layer.md), installed by
-- pglayer/migrations/0001_schema.py. Nothing here grows with channels, members or processes:
-- rows live until taken or expired.
CREATE SCHEMA pglayer;

-- Normal channels ("thumbnails"): each message waits here until one receiver takes it
-- (DELETE ... RETURNING with FOR UPDATE SKIP LOCKED, so two receivers never both get it) or
-- it expires (dropped by the senders' sweep). Logged: a message outlives a worker restart.
CREATE TABLE pglayer.queue (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prefix     text        NOT NULL,  -- the layer's CONFIG prefix: layers sharing a database
    channel    text        NOT NULL,
    body       bytea       NOT NULL,  -- the message, msgpack-encoded
    expires_at timestamptz NOT NULL
);
CREATE INDEX queue_channel_id ON pglayer.queue (prefix, channel, id);
CREATE INDEX queue_expires_at ON pglayer.queue (expires_at);

-- Messages to groups and process channels travel inside their NOTIFY payload when they fit;
-- a bigger one is stored here and the NOTIFY carries its id. UNLOGGED: a row is worth
-- nothing after a crash, when the notifications that name it are gone too.
CREATE UNLOGGED TABLE pglayer.message (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body       bytea       NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX message_expires_at ON pglayer.message (expires_at);
