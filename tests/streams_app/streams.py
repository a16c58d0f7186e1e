"""The test app's stream, declared as any app would: nothing in consumers/ or cdc/ names it."""

from cdc.declarations import Access, Stream, register
from cdc.filters import BOOLEAN, INTEGER, NUMBER, TEXT, TIMESTAMP, Column

register(
    Stream(
        name="bids",
        table="public.streams_app_bid",
        columns={
            "item": Column(TEXT, partition=True),
            "amount": Column(NUMBER),
            "sealed": Column(BOOLEAN),
            "bidder_id": Column(INTEGER),
            "placed_at": Column(TIMESTAMP),
        },
        order=("-placed_at", "-id"),
        snapshot_max=20,
        hidden=("note",),
        access=Access(owner="bidder_id", public_when={"sealed": False}),  # sealed bids: their bidder's only
    )
)
