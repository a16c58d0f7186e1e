-- 0006: the newest change each Channels group was sent, by position. A subscriber is told a
-- position made of these (its own groups' newest), never the log's newest: that one moves
-- with every change, private ones too (docs/protocol.md, "Positions"). Written with each
-- tick, in the same statement (cdc/queries.sql insert_tick), so it never lags the ticks.

CREATE TABLE cdc.group_position (
    group_name text PRIMARY KEY,
    tick bigint NOT NULL,
    event_id bigint NOT NULL
);
