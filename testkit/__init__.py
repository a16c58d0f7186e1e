"""What the tests and the benchmarks share: real processes (processes.py, live_servers.py),
Postgres the way outside writers use it (pg.py), a websocket client speaking the protocol
(wsclient.py), HTTP probes (probes.py) and a channel-layer peer in another process
(layer_peer.py). Nothing here is a test; nothing here imports from tests/."""
