"""A table of the test app's own: bids on items, some sealed (only their bidder sees those)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class Bid(models.Model):
    bidder = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE)
    item = models.TextField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    sealed = models.BooleanField(db_default=False)
    note = models.TextField(db_default="")  # the bidder's own note: declared hidden, never sent
    placed_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "streams_app_bid"
