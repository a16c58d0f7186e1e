"""The project's live streams (cdc/declarations.py): the only place they are defined."""

from cdc.declarations import Access, Stream, register
from cdc.filters import INTEGER, NUMBER, TEXT, Column

register(
    Stream(
        name="articles",
        table="public.article",
        columns={"category": Column(TEXT, partition=True), "source": Column(TEXT)},
        order=("-published_at", "-id"),
    ),
    Stream(
        name="posts",
        table="public.post",
        columns={
            "author_id": Column(INTEGER, partition=True),
            "visibility": Column(TEXT, choices=("public", "private")),
        },
        order=("-created_at", "-id"),
        # Public posts to anyone, private ones to their author only.
        access=Access(owner="author_id", public_when={"visibility": "public"}),
    ),
    Stream(  # a stream of updates: one row per symbol, its price changed in place
        name="ticker",
        table="public.ticker",
        columns={"symbol": Column(TEXT, partition=True), "price": Column(NUMBER)},
        order=("symbol",),
    ),
)
