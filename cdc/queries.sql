-- Runtime queries of the capture and relay, one named block each (cdc/sql.py loads them).

-- name: current_snapshot
SELECT pg_current_snapshot()::text AS snapshot

-- name: read_changes
-- The reading primitive (docs/architecture.md, "Reading in commit order"). One statement,
-- so one database snapshot: the changes whose transaction was not visible in snapshot
-- `since` but is visible in `until` (when NULL: in this statement's own snapshot, which it
-- returns), after event `after_id`, in id order. It touches only the changes it returns,
-- whatever the log's size: transactions with a txid from `since`'s xmax on are a range of
-- the txid index, and those in progress at `since` one look-up each. The OFFSET 0 fences
-- keep each search on its own: without them Postgres, which cannot estimate an xid8 range
-- well, served ORDER BY id LIMIT by walking the whole primary key and filtering. For the
-- same reason the bound on id is written `id + 0`, which no index matches: the relay plans
-- this query once (plan_once), without the values, and a plan that searched the primary key
-- from `after_id` (0 for most reads) would walk the whole log on every read. The LEFT JOIN
-- returns the snapshot even when there is no change.
WITH cur AS (SELECT coalesce(%(until)s::pg_snapshot, pg_current_snapshot()) AS snap),
candidates AS (
    SELECT id, txid FROM (
        SELECT id, txid FROM cdc.event
        WHERE txid >= pg_snapshot_xmax(%(since)s::pg_snapshot) AND id + 0 > %(after_id)s
        OFFSET 0
    ) AS began_later
    UNION ALL
    SELECT e.id, e.txid
    FROM pg_snapshot_xip(%(since)s::pg_snapshot) AS open (txid)
    CROSS JOIN LATERAL (
        SELECT id, txid FROM cdc.event WHERE txid = open.txid AND id + 0 > %(after_id)s OFFSET 0
    ) AS e
),
page AS (  -- ids first: the sort stays small even when the delta is large
    SELECT c.id
    FROM candidates AS c, cur
    WHERE pg_visible_in_snapshot(c.txid, cur.snap)
    ORDER BY c.id
    LIMIT %(limit)s
)
SELECT cur.snap::text AS snapshot, e.id, e.txid::text AS txid, e.table_name, e.op,
       e.new_row, e.old_row, e.captured_at
FROM cur
LEFT JOIN (
    page CROSS JOIN LATERAL (SELECT * FROM cdc.event WHERE id = page.id OFFSET 0) AS e
) ON true
ORDER BY e.id

-- name: plan_once
-- For the relay's connection (cdc/log.py plan_reads_once): Postgres planned read_changes
-- anew for every read, as its generic plan's estimates look worse, and planning took the
-- server several times longer than running it (about 150 µs against 20). The generic plan
-- searches the same indexes (tests/integration/test_reader_plan.py); the connection's other
-- statements, writes and look-ups by key, are planned once as well. A plan made once is
-- made with the statistics of that moment, and kept: made while the log was small (a new
-- install, a log just pruned), it scanned the whole log, and kept scanning it as the log grew,
-- on every read (tests/integration/test_reader_plan.py). Every query of the relay's has an
-- index to search, so a sequential scan is never its plan. Where one is the only plan (the
-- one-row cdc.relay), turning scans off prices it above every threshold, jit_above_cost's
-- too: on a connection allowed to JIT-compile (core/database.py turns it off, a URL's
-- options can turn it on), each mark_relayed then spent 30 ms compiling. None of the
-- relay's statements runs long enough to gain from it, so this connection never compiles.
SET plan_cache_mode = force_generic_plan;
SET enable_seqscan = off;
SET jit = off

-- name: doorbell_sleep
-- The relay falls asleep (cdc/doorbell.py): granted once every writer that skipped the ring,
-- holding this lock shared, has ended; while it waits, writers ring.
SELECT pg_advisory_lock(cdc.doorbell_key())

-- name: doorbell_try_sleep
-- The same, only if no such writer is open (cdc/doorbell.py).
SELECT pg_try_advisory_lock(cdc.doorbell_key())

-- name: doorbell_wake
SELECT pg_advisory_unlock(cdc.doorbell_key())

-- name: capture_status
SELECT table_name, excluded_columns, installed_hash, expected_hash, enabled,
       truncate_installed_hash, truncate_expected_hash, truncate_enabled
FROM cdc.capture_status
ORDER BY table_name

-- name: last_tick
SELECT id, since::text AS since, snapshot::text AS snapshot, complete, event_ids
FROM cdc.tick
ORDER BY id DESC
LIMIT 1

-- name: insert_tick
-- A tick, and the newest change it sends each of its groups (in one statement: a snapshot
-- that sees the tick sees the groups' positions too).
WITH tick AS (
    INSERT INTO cdc.tick (id, since, snapshot, complete, event_ids)
    VALUES (%(id)s, %(since)s::pg_snapshot, %(snapshot)s::pg_snapshot, %(complete)s, %(event_ids)s)
)
INSERT INTO cdc.group_position AS g (group_name, tick, event_id)
SELECT group_name, %(id)s, event_id
FROM unnest(%(groups)s::text[], %(group_event_ids)s::bigint[]) AS u (group_name, event_id)
ON CONFLICT (group_name) DO UPDATE SET tick = excluded.tick, event_id = excluded.event_id
WHERE (g.tick, g.event_id) < (excluded.tick, excluded.event_id)

-- name: groups_position
-- The newest change sent to any of %(groups)s, up to position (%(tick)s, %(event_id)s).
SELECT tick, event_id FROM cdc.group_position
WHERE group_name = ANY (%(groups)s::text[]) AND (tick, event_id) <= (%(tick)s, %(event_id)s)
ORDER BY tick DESC, event_id DESC
LIMIT 1

-- name: mark_relayed
UPDATE cdc.relay SET relayed_tick = %(tick)s, relayed_at = now()

-- name: relayed_tick
SELECT relayed_tick FROM cdc.relay

-- name: tick_changes
-- The changes after position (`tick`, `event_id`) through tick `max_tick`, in the order
-- they were handed on; only tables in `tables` unless NULL. Used to resend unrelayed
-- ticks and to replay what a client missed.
SELECT t.id AS tick, e.id, e.txid::text AS txid, e.table_name, e.op, e.new_row, e.old_row,
       e.captured_at
FROM cdc.tick AS t
CROSS JOIN LATERAL unnest(t.event_ids) WITH ORDINALITY AS u (event_id, n)
JOIN cdc.event AS e ON e.id = u.event_id
WHERE t.id >= %(tick)s AND t.id <= %(max_tick)s
  AND (t.id > %(tick)s OR u.event_id > %(event_id)s)
  AND (%(tables)s::text[] IS NULL OR e.table_name = ANY (%(tables)s::text[]))
ORDER BY t.id, u.n
LIMIT %(limit)s

-- name: tick_range
SELECT min(id) AS oldest, max(id) AS newest FROM cdc.tick

-- name: current_position
-- The newest tick and its last event, with the snapshot this statement sees: a snapshot of
-- rows read in the same statement reflects every change up to this position and any later
-- change whose transaction this snapshot sees.
SELECT t.id AS tick, coalesce(t.event_ids[cardinality(t.event_ids)], 0) AS event_id,
       pg_current_snapshot()::text AS snapshot
FROM cdc.tick AS t
ORDER BY t.id DESC
LIMIT 1

-- name: try_lead
-- Session-level: held until this connection ends, so a dead leader's lock dies with it.
SELECT pg_try_advisory_lock(%(key)s) AS leader

-- name: heartbeat
INSERT INTO cdc.listener AS l (name, role, heartbeat_at, last_read_at, last_tick, relayed_total)
VALUES (%(name)s, %(role)s, now(), %(last_read_at)s, %(last_tick)s, %(relayed_total)s)
ON CONFLICT (name) DO UPDATE
SET role = excluded.role, heartbeat_at = now(), last_read_at = excluded.last_read_at,
    last_tick = excluded.last_tick, relayed_total = excluded.relayed_total

-- name: forget_listener
DELETE FROM cdc.listener WHERE name = %(name)s

-- name: forget_dead_listeners
DELETE FROM cdc.listener WHERE heartbeat_at < now() - make_interval(secs => %(seconds)s)

-- name: prune_ticks
-- Ticks older than the retention, never the relay's own position or anything after it.
DELETE FROM cdc.tick
WHERE id IN (
    SELECT id FROM cdc.tick
    WHERE created_at < now() - make_interval(secs => %(retention)s)
      AND id < (SELECT relayed_tick FROM cdc.relay)
    ORDER BY id
    LIMIT %(limit)s
)

-- name: prune_events
-- Events of pruned ticks only: those the oldest kept tick's lower snapshot already saw
-- (an index range on txid below its xmax), so a kept tick never loses one.
DELETE FROM cdc.event
WHERE id IN (
    SELECT e.id
    FROM cdc.event AS e, (SELECT since FROM cdc.tick ORDER BY id LIMIT 1) AS oldest
    WHERE e.txid < pg_snapshot_xmax(oldest.since)
      AND pg_visible_in_snapshot(e.txid, oldest.since)
    LIMIT %(limit)s
)

-- name: relay_health
-- Lag: the age of the oldest captured change that is not relayed yet (0 when none);
-- pending: how many committed changes wait; captured_total: event ids handed out so far
-- (a rolled-back write takes one too), for /metrics.
SELECT
    r.relayed_tick,
    r.relayed_at,
    coalesce(extract(epoch FROM now() - p.oldest), 0)::float8 AS lag_seconds,
    p.pending,
    coalesce(pg_sequence_last_value(pg_get_serial_sequence('cdc.event', 'id')), 0) AS captured_total,
    (SELECT json_agg(json_build_object(
        'name', l.name, 'role', l.role, 'started_at', l.started_at,
        'heartbeat_age', extract(epoch FROM now() - l.heartbeat_at)::float8,
        'last_read_at', l.last_read_at, 'last_tick', l.last_tick,
        'relayed_total', l.relayed_total) ORDER BY l.role, l.name)
     FROM cdc.listener AS l) AS listeners
FROM cdc.relay AS r
JOIN cdc.tick AS t ON t.id = r.relayed_tick
-- Not relayed: the changes not visible in the relayed snapshot, found as read_changes finds
-- them (a range of the txid index, and a look-up per open transaction), so that a health
-- check does not read the whole log.
CROSS JOIN LATERAL (SELECT CASE WHEN t.complete THEN t.snapshot ELSE t.since END AS snap) AS s
CROSS JOIN LATERAL (
    SELECT min(c.captured_at) AS oldest, count(*) AS pending
    FROM (
        SELECT captured_at FROM (
            SELECT captured_at FROM cdc.event WHERE txid >= pg_snapshot_xmax(s.snap) OFFSET 0
        ) AS began_later
        UNION ALL
        SELECT e.captured_at
        FROM pg_snapshot_xip(s.snap) AS open (txid)
        CROSS JOIN LATERAL (SELECT captured_at FROM cdc.event WHERE txid = open.txid OFFSET 0) AS e
    ) AS c
) AS p

-- name: stream_table
-- What a stream's declaration needs of table %(table)s (cdc/checks.py): whether it exists,
-- its columns ('name type'), whether it is under capture and which columns capture excludes.
SELECT to_regclass(%(table)s) IS NOT NULL AS found,
       ARRAY(SELECT a.attname::text || ' ' || ty.typname::text
             FROM pg_attribute AS a JOIN pg_type AS ty ON ty.oid = a.atttypid
             WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       s.table_name IS NOT NULL AS captured,
       coalesce(s.excluded_columns, '{}') AS excluded
FROM (SELECT) AS one
LEFT JOIN cdc.capture_status AS s ON s.table_name = %(table)s
