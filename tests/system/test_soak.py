"""The fault-injection soak (bench/soak.py) for a minute, and the check it relies on.

The soak runs the whole system on a Postgres server of its own (it restarts it), so it does
not use `DATABASE_URL`'s server even when one is set.
"""

from __future__ import annotations

from bench.soak import Log, Logged, Report, Run, check, soak
from bench.soak_client import clients_for

ALL_KINDS = {
    "kill -9 leader",
    "terminate listener connection",
    "terminate layer connections",
    "restart the web server",
    "restart postgres",
}


async def test_a_minute_of_faults_loses_nothing_repeats_nothing_and_keeps_commit_order():
    report = await soak(seconds=60, clients=50)
    print(report.table())

    assert report.problems == []
    assert set(report.faults) == ALL_KINDS
    assert report.faults["restart postgres"] == 1
    assert report.client_reconnects >= 50, "restarting the web server must have made every client resume"
    assert report.logged_changes >= report.confirmed_changes > 1000
    assert report.deliveries > 10 * report.logged_changes  # 50 clients, each on part of the log


NOWHERE = ("ws://127.0.0.1:1/ws/live/", "http://127.0.0.1:1")  # the check never connects


def article(tick: int, event_id: int, category: str = "tech") -> Logged:
    return Logged((tick, event_id), "public.article", "insert", {"id": event_id, "category": category}, None)


def test_the_check_reports_a_lost_a_repeated_and_a_reordered_change_and_private_posts():
    private = Logged((2, 5), "public.post", "insert", {"id": 1, "visibility": "private"}, None)
    log = Log([article(1, 1), article(1, 2), article(2, 3, "world"), article(2, 4), private], captured=5)
    received = {
        "exact": [1, 2, 3, 4],
        "lost": [1, 2, 4],
        "repeated": [1, 2, 2, 3, 4],
        "reordered": [2, 1, 3, 4],
        "filtered": [1, 2, 4],
    }
    clients = clients_for(len(received), *NOWHERE, [{"articles": {}}])
    posts = clients_for(1, *NOWHERE, [{"posts": {}}])
    for client, ids in zip(clients, received.values(), strict=True):
        client.subscriptions["articles"].start, client.subscriptions["articles"].ids = "0:0", ids
    clients[-1].subscriptions["articles"].filters = {"category": "tech"}
    posts[0].subscriptions["posts"].start = "0:0"
    report = Report(seconds=1, clients=len(clients) + 1)

    check(report, Run(clients + posts, writers=[]), log)

    assert [p.split(":")[0] for p in report.problems] == [f"client {n}, articles {{}}" for n in (1, 2, 3)]
    assert "missing 1 [3]" in report.problems[0]
    assert "twice 1 [2]" in report.problems[1]
    assert "out of commit order" in report.problems[2]
