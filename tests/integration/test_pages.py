"""The server-rendered pages through Django's test client: the dashboard, writing a post,
and the static files daphne cannot serve by itself."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from core.models import Post

pytestmark = pytest.mark.usefixtures("django_db_at")


@pytest.fixture
def alice() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_user("alice"))
    return client


def test_the_dashboard_has_the_lists_the_connection_state_and_the_client():
    page = Client().get("/")
    assert page.status_code == 200
    html = page.content.decode()
    for hook in ('id="articles"', 'id="posts"', 'id="connection"', 'data-live-url="/ws/live/"', "live.js"):
        assert hook in html
    assert 'id="post-form"' not in html  # anonymous: a link to log in instead


def test_the_client_and_its_styles_are_served():
    for path in ("/static/live.js", "/static/live.css"):
        response = Client().get(path)
        assert response.status_code == 200, path
        assert b"".join(response.streaming_content)  # type: ignore[attr-defined]  # a FileResponse


def test_a_logged_in_user_writes_a_private_post(alice):
    assert 'id="post-form"' in alice.get("/").content.decode()
    response = alice.post("/posts/", {"body": "note to self", "visibility": "private"})
    assert (response.status_code, response["Location"]) == (302, "/")
    post = Post.objects.get()
    assert (post.author.username, post.body, post.visibility) == ("alice", "note to self", "private")


def test_an_empty_post_is_refused_with_the_form_again(alice):
    response = alice.post("/posts/", {"body": "", "visibility": "public"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Post.objects.exists()


def test_writing_a_post_needs_a_login():
    response = Client().post("/posts/", {"body": "hi", "visibility": "public"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not Post.objects.exists()


def test_the_post_form_starts_at_public_with_no_blank_choice(alice: Client) -> None:
    html = alice.get("/").content.decode()
    assert '<option value="public" selected>' in html
    assert "---------" not in html


def test_the_icon_is_served_where_browsers_look_for_it() -> None:
    response = Client().get("/favicon.ico", follow=True)
    assert response.redirect_chain == [("/static/favicon.svg", 301)]
    assert response["Content-Type"] == "image/svg+xml"
