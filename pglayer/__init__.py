"""A Channels layer over Postgres (`pglayer.layer.PostgresChannelLayer`), and channels_redis'
pub/sub layer with the same queues and gap notices (`pglayer.redis_layer`). It imports
nothing of the project: its SQL and migration are beside it, its documentation is
docs/channel-layer.md."""
