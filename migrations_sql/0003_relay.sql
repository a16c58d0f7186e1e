-- 0003: what the relay (manage.py cdc_listen) keeps in the database, so that a restart,
-- another host or a standby continues exactly where the last leader stopped.

-- A tick is one batch as read by the leader: the changes whose transaction was not visible
-- in `since` and is visible in `snapshot` (those after `event_ids`' predecessors when the
-- delta took several ticks). A tick is written before its changes are handed on and never
-- changes afterwards, so a client position (tick, event id) names one exact point in the
-- stream, and a resume replays exactly the ticks after it.
CREATE TABLE cdc.tick (
    id         bigint      PRIMARY KEY,
    since      pg_snapshot NOT NULL,
    snapshot   pg_snapshot NOT NULL,
    complete   boolean     NOT NULL,  -- false: the delta continues in the next tick
    event_ids  bigint[]    NOT NULL,  -- in the order they were handed on
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Tick 0: capture starts now. Every change committed after this migration is relayed.
INSERT INTO cdc.tick (id, since, snapshot, complete, event_ids)
VALUES (0, pg_current_snapshot(), pg_current_snapshot(), true, '{}');

-- The relay's position: every tick up to relayed_tick has been handed to the channel layer.
CREATE TABLE cdc.relay (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    relayed_tick bigint      NOT NULL REFERENCES cdc.tick (id) DEFERRABLE INITIALLY DEFERRED,
    relayed_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO cdc.relay (relayed_tick) VALUES (0);

-- One row per running cdc_listen process, for cdc_status, /healthz and operators.
CREATE TABLE cdc.listener (
    name          text        PRIMARY KEY,  -- host:pid
    role          text        NOT NULL CHECK (role IN ('leader', 'standby')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    last_read_at  timestamptz,
    last_tick     bigint,
    relayed_total bigint      NOT NULL DEFAULT 0
);
