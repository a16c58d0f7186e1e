"""GET /api/authors: the names beside posts, and nothing more of anyone."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from core.authors import MAX_IDS
from core.models import Post

pytestmark = pytest.mark.usefixtures("django_db_at")


def user(name: str, *visibilities: str) -> int:
    author = get_user_model().objects.create_user(name, email=f"{name}@example.com", first_name=name.title())
    for visibility in visibilities:
        Post.objects.create(author=author, body="hi", visibility=visibility)
    return int(author.pk)


def ask(client: Client, ids: str) -> tuple[int, str]:
    response = client.get("/api/authors", {"ids": ids})
    return response.status_code, response.content.decode()


def test_names_only_authors_of_public_posts_and_only_their_usernames() -> None:
    alice = user("alice", "public", "private")
    bob = user("bob", "private")
    carol = user("carol")
    status, body = ask(Client(), f"{alice},{bob},{carol},{carol + 1000}")
    assert (status, json.loads(body)) == (200, {str(alice): "alice"})
    for secret in ("example.com", "Alice", "bob", "carol"):  # emails, full names, the unnamed
        assert secret not in body


def test_the_viewer_is_named_to_themselves_only() -> None:
    bob = user("bob", "private")
    client = Client()
    client.force_login(get_user_model().objects.get(pk=bob))
    assert json.loads(ask(client, str(bob))[1]) == {str(bob): "bob"}
    assert json.loads(ask(Client(), str(bob))[1]) == {}


def test_a_user_whose_public_post_turns_private_is_no_longer_named() -> None:
    alice = user("alice", "public")
    Post.objects.filter(author_id=alice).update(visibility="private")
    assert json.loads(ask(Client(), str(alice))[1]) == {}


def test_at_most_max_ids_per_request() -> None:
    alice = user("alice", "public")
    many = ",".join(str(alice + n) for n in range(MAX_IDS))
    assert ask(Client(), many) == (200, json.dumps({str(alice): "alice"}))
    status, body = ask(Client(), f"{many},{alice + MAX_IDS}")
    assert (status, json.loads(body)) == (400, {"error": f"at most {MAX_IDS} ids per request"})


@pytest.mark.parametrize(
    "ids", ["x", "0", "-1", "1.5", "9223372036854775808", "1" * 5000, "\u0661"]
)  # the last: a digit, not ASCII
def test_anything_but_user_ids_is_refused(ids: str) -> None:
    status, body = ask(Client(), ids)
    assert status == 400
    assert "ids must be user ids" in body


def test_answers_may_be_cached_by_the_viewers_browser_only() -> None:
    response = Client().get("/api/authors", {"ids": "1"})
    assert "private" in response["Cache-Control"]
    assert "max-age=300" in response["Cache-Control"]
    assert "Cookie" in response["Vary"]
