"""The domain: articles (the news aggregator), posts (the social feed) and the ticker
(prices updated in place).

These tables are a public contract for writers that are not Django: every column but the
required ones has a *database* default (`db_default`), so a bare
`INSERT INTO article (title) VALUES ('x')` works from psql or any language.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class Article(models.Model):
    title = models.TextField()
    body = models.TextField(db_default="", blank=True)
    url = models.TextField(db_default="", blank=True)
    source = models.TextField(db_default="", blank=True)
    category = models.TextField(db_default="general")
    published_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "article"
        ordering = ["-published_at", "-id"]
        indexes = [models.Index(fields=["category", "-published_at"], name="article_category_latest")]

    def __str__(self) -> str:
        return self.title


class Post(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public"
        PRIVATE = "private"

    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts")
    body = models.TextField()
    visibility = models.TextField(choices=Visibility.choices, db_default=Visibility.PUBLIC)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "post"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(visibility__in=["public", "private"]), name="post_visibility_valid"
            )
        ]
        indexes = [models.Index(fields=["author", "-created_at"], name="post_author_latest")]

    def __str__(self) -> str:
        return f"{self.author_id}: {self.body[:40]}"


class Ticker(models.Model):
    """One symbol's latest price: a row updated in place several times a second (a stream of
    updates, where articles and posts are mostly inserts)."""

    symbol = models.TextField(unique=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ticker"
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(symbol=""), name="ticker_symbol_not_empty"),
            models.CheckConstraint(condition=models.Q(price__gt=0), name="ticker_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.price}"
