"""The layer's in-memory bookkeeping (pglayer/local.py) and its wire format (pglayer/wire.py,
pglayer/messages.py), as plain code: no database, no event loop."""

from __future__ import annotations

import time

import msgpack
import pytest

from pglayer import wire
from pglayer.local import Inbox, Inboxes, Local
from pglayer.messages import deserialize, gap, serialize


def test_a_full_inbox_drops_its_oldest_message_silently_unless_it_asked_for_gaps():
    quiet, asked = Inbox(capacity=2, expiry=60), Inbox(capacity=2, expiry=60)
    asked.gaps = True
    for inbox in (quiet, asked):
        for n in range(3):
            inbox.put_nowait(serialize({"type": "m", "n": n}))

    newest = [{"type": "m", "n": n} for n in (1, 2)]
    assert [deserialize(quiet.get_nowait() or b"") for _ in range(2)] == newest
    assert quiet.get_nowait() is None
    assert [deserialize(asked.get_nowait() or b"") for _ in range(3)] == [gap("overflow"), *newest]


def test_an_inbox_holds_at_most_its_bytes_however_few_the_messages():
    """A consumer busy with a long replay must not make its queue hold a stream's worth of
    large changes: past `capacity_bytes` the oldest go (and a channel that asked is told)."""
    inbox = Inbox(capacity=100, expiry=60, capacity_bytes=2500)
    inbox.gaps = True
    big = [serialize({"type": "m", "n": n, "pad": "x" * 1000}) for n in range(4)]
    for message in big:
        inbox.put_nowait(message)
    assert inbox.bytes <= 2500
    got = [deserialize(inbox.get_nowait() or b"") for _ in range(3)]
    assert got[0] == gap("overflow")
    assert [m["n"] for m in got[1:]] == [2, 3]
    assert (inbox.get_nowait(), inbox.bytes) == (None, 0)


def test_an_expired_message_is_dropped_and_only_a_channel_that_asked_is_told():
    quiet, asked = Inbox(capacity=10, expiry=60), Inbox(capacity=10, expiry=60)
    asked.gaps = True
    for inbox in (quiet, asked):
        inbox.put_nowait(serialize({"type": "stale"}), expires_at=time.time() - 1)
        inbox.put_nowait(serialize({"type": "fresh"}))

    assert deserialize(quiet.get_nowait() or b"") == {"type": "fresh"}
    assert [deserialize(asked.get_nowait() or b"") for _ in range(2)] == [gap("expired"), {"type": "fresh"}]


def test_capacity_by_channel_name_as_channels_layers_take_it():
    inboxes = Inboxes(expiry=60, capacity=5, channel_capacity={"thumb*": 2})
    assert (inboxes.capacity("thumbnails"), inboxes.capacity("other")) == (2, 5)
    assert inboxes.new("thumbnails").capacity == 2


def test_memberships_say_when_the_addresses_to_listen_to_change_and_expire():
    changes: list[set[str]] = []
    local = Local(Inboxes(60, 10, None), 100, on_change=lambda: changes.append(local.addresses()))
    a, b = local.open("a!1"), local.open("b!2")
    local.join("g_news", "a!1", now=1000)
    local.join("g_news", "b!2", now=1050)
    assert local.recipients("g_news") == [a, b]
    assert changes == [{"g_news"}]  # the second member needs no new LISTEN

    local.close("a!1")  # a consumer ended: it leaves its groups
    assert local.recipients("g_news") == [b]
    local.next_expiry_check = 0
    local.expire_memberships(now=1151)  # group_expiry after b's latest group_add
    assert local.addresses() == set()
    assert changes[-1] == set()


def test_a_normal_channels_bell_is_listened_to_while_a_receiver_waits():
    changes: list[set[str]] = []
    local = Local(Inboxes(60, 10, None), 100, on_change=lambda: changes.append(local.addresses()))
    first, second = local.bell("c_x"), local.bell("c_x")
    assert first is second
    assert changes == [{"c_x"}]
    local.release("c_x", first)
    assert local.addresses() == {"c_x"}
    local.release("c_x", second)
    assert changes == [{"c_x"}, set()]


@pytest.mark.parametrize(
    "payload",
    ["", "garbage", "m1,x", "x1,,AAAA", "m1,,not base64!", "t1,,not-an-id", "mnever,,AAAA"],
)
def test_a_notification_the_layer_did_not_send_is_malformed(payload):
    with pytest.raises(wire.Malformed):
        wire.parse(payload)


def test_the_layers_own_payloads_parse_back():
    data = serialize({"type": "m", "text": "é" * 10})
    payload = wire.inline(1234.5, "specific.x!y", data)
    assert payload is not None
    assert wire.parse(payload) == wire.Notification(1234.5, "specific.x!y", data, 0)
    assert wire.parse(wire.stored_head(1234.5, "") + "42") == wire.Notification(1234.5, "", None, 42)
    assert wire.inline(0, "", b"x" * 6000) is None  # over the NOTIFY limit


NOT_MESSAGES = [b"\xc1", msgpack.packb([1, 2]), serialize({"no": "type"}), serialize({"type": 3})]


@pytest.mark.parametrize("data", NOT_MESSAGES)
def test_what_is_not_a_channels_message_is_refused(data):
    assert deserialize(data) is None
