-- How many changes (of every stream) the ticks from %(tick)s through %(max_tick)s hold:
-- an upper bound on what a replay from a position in tick %(tick)s would read.
SELECT coalesce(sum(cardinality(event_ids)), 0) AS pending
FROM cdc.tick
WHERE id >= %(tick)s AND id <= %(max_tick)s
