"""The ticker stream through the real consumer: a snapshot of every symbol's price, then its
updates and deletes as such, filtered by symbol."""

from __future__ import annotations

import pytest

from tests.consumer_env import connected

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("live_db", "layer")]


async def test_a_snapshot_shows_every_symbols_price_in_symbol_order(aconn):
    await aconn.execute("INSERT INTO ticker (symbol, price) VALUES ('HOOLI', 80.5), ('ACME', 12.25)")
    async with connected() as client:
        _, snapshot = await client.subscribe("ticker", snapshot=10)
        assert [(r["symbol"], r["price"]) for r in snapshot["rows"]] == [("ACME", 12.25), ("HOOLI", 80.5)]
        assert set(snapshot["rows"][0]) == {"id", "symbol", "price", "updated_at"}


@pytest.mark.usefixtures("relay")
async def test_updates_and_deletes_arrive_as_such_and_a_symbol_filter_keeps_to_its_symbol(aconn):
    async with connected() as client:
        await client.subscribe("ticker", filters={"symbol": "ACME"})
        await aconn.execute("INSERT INTO ticker (symbol, price) VALUES ('ACME', 10), ('HOOLI', 20)")
        await aconn.execute("UPDATE ticker SET price = 30 WHERE symbol = 'HOOLI'")  # not for this client
        await aconn.execute("UPDATE ticker SET price = 11 WHERE symbol = 'ACME'")
        await aconn.execute("DELETE FROM ticker WHERE symbol = 'ACME'")
        insert, update, delete = await client.changes(3)

    assert (insert["op"], insert["row"]["symbol"]) == ("insert", "ACME")
    assert (update["op"], update["row"]["price"], update["old"]["price"]) == ("update", 11, 10)
    assert (delete["op"], delete["row"], delete["old"]["symbol"]) == ("delete", None, "ACME")


async def test_an_unknown_ticker_filter_is_a_bad_filter():
    async with connected() as client:
        error = await client.ask({"type": "subscribe", "stream": "ticker", "filters": {"volume": 5}})
    assert (error["type"], error["code"]) == ("error", "bad_filter")


@pytest.mark.usefixtures("relay")
async def test_a_price_filter_sees_a_row_enter_and_leave_it_as_updates(aconn):
    """`price gt 100`: the update that lifts a price over 100 arrives, as do those above it and
    the one that takes it back under (the client drops the row then); none below it."""
    await aconn.execute("INSERT INTO ticker (symbol, price) VALUES ('ACME', 90)")
    async with connected() as client:
        await client.subscribe("ticker", filters={"price": {"gt": 100}})
        for price in (95, 110, 120, 99, 80, 101):
            await aconn.execute("UPDATE ticker SET price = %s WHERE symbol = 'ACME'", (price,))
        changes = await client.changes(4)
        assert await client.answers_ping()  # and no fifth
    assert [(c["old"]["price"], c["row"]["price"]) for c in changes] == [
        (95, 110),
        (110, 120),
        (120, 99),
        (80, 101),
    ]
