-- The layer's runtime statements, one named block each (pglayer/sql.py loads them).

-- name: notify
-- One message, or a wake-up, inside the payload.
SELECT pg_notify(%(address)s, %(payload)s)

-- name: notify_stored
-- A message over the payload limit: stored until it expires, its id sent after `head`.
-- One statement, so the row is committed before any listener hears of it.
WITH stored AS (
    INSERT INTO pglayer.message (body, expires_at)
    VALUES (%(body)s, to_timestamp(%(expires_at)s))
    RETURNING id
)
SELECT pg_notify(%(address)s, %(head)s || stored.id) FROM stored

-- name: read_stored
-- A group message: every process with members reads it once; it goes when it expires.
SELECT body FROM pglayer.message WHERE id = %(id)s

-- name: take_stored
-- A message for one process channel: its one reader deletes it as it reads it.
DELETE FROM pglayer.message WHERE id = %(id)s RETURNING body

-- name: enqueue
-- A message to a normal channel, unless `capacity` unexpired ones wait already (then no
-- row: ChannelFull). Its receivers' processes are rung in the same statement.
WITH stored AS (
    INSERT INTO pglayer.queue (prefix, channel, body, expires_at)
    SELECT %(prefix)s, %(channel)s, %(body)s, to_timestamp(%(expires_at)s)
    WHERE (SELECT count(*) FROM pglayer.queue
           WHERE prefix = %(prefix)s AND channel = %(channel)s AND expires_at > now()) < %(capacity)s
    RETURNING id
)
SELECT pg_notify(%(address)s, '') FROM stored

-- name: take
-- The oldest unexpired message of a normal channel, for one receiver only.
DELETE FROM pglayer.queue
WHERE id = (
    SELECT id FROM pglayer.queue
    WHERE prefix = %(prefix)s AND channel = %(channel)s AND expires_at > now()
    ORDER BY id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING body

-- name: flush
-- Channels' flush: every message queued for this layer's normal channels goes.
DELETE FROM pglayer.queue WHERE prefix = %(prefix)s

-- name: sweep
-- Expired messages go silently.
WITH stored AS (DELETE FROM pglayer.message WHERE expires_at < now())
DELETE FROM pglayer.queue WHERE expires_at < now()
