"""GET /api/authors?ids=3,7: the names the live page shows beside posts, whose rows carry
only `author_id` (docs/protocol.md, "Authors' names").

It answers `{"3": "alice"}`: the username (the name the site already shows) of each asked-for
user who has a public post or is the viewer; nobody else is named and nothing else of a user
is sent. The page asks once per author it has not seen, so delivering a change costs no query.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from cdc.filters import MAX_BIGINT as MAX_ID
from core.models import Post

MAX_IDS = 100  # ids per request; the page asks in chunks of at most this many
NAME_CACHE_SECONDS = 300  # the browser may reuse an answer this long


class BadIds(ValueError):
    pass


@require_GET
@cache_control(private=True, max_age=NAME_CACHE_SECONDS)
def authors(request: HttpRequest) -> JsonResponse:
    try:
        ids = parse_ids(request.GET.get("ids", ""))
    except BadIds as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    named = names(ids, request.user.pk if request.user.is_authenticated else None)
    return JsonResponse({str(pk): name for pk, name in named.items()})


def parse_ids(text: str) -> set[int]:
    parts = [part for part in text.split(",") if part]
    if len(parts) > MAX_IDS:
        raise BadIds(f"at most {MAX_IDS} ids per request")
    if not all(_is_user_id(part) for part in parts):
        raise BadIds(f"ids must be user ids (1 to {MAX_ID}), separated by commas")
    return {int(part) for part in parts}


def _is_user_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= len(str(MAX_ID)) and 1 <= int(text) <= MAX_ID


def names(ids: set[int], viewer: int | None) -> dict[int, str]:
    """Usernames of those of `ids` who have a public post, or are `viewer`: one query."""
    if not ids:
        return {}
    user_model = get_user_model()
    public_post = Post.objects.filter(author=OuterRef("pk"), visibility=Post.Visibility.PUBLIC)
    shown = Q(Exists(public_post))
    if viewer is not None:
        shown |= Q(pk=viewer)
    rows = user_model.objects.filter(shown, pk__in=ids).values_list("pk", user_model.USERNAME_FIELD)
    return {int(pk): str(name) for pk, name in rows}
