"""The pages: the live dashboard, and the form that writes a post (the Django writer)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.forms import PostForm
from core.models import Article

CATEGORIES_SHOWN = 50  # in the dashboard's category filter


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return _dashboard(request, PostForm())


@login_required
@require_POST
def create_post(request: HttpRequest) -> HttpResponse:
    form = PostForm(request.POST)
    if not form.is_valid():
        return _dashboard(request, form, status=400)
    assert isinstance(request.user, User)  # login_required
    form.instance.author = request.user
    form.save()  # the capture trigger takes it from here, like any other writer's row
    return redirect("dashboard")


def _dashboard(request: HttpRequest, form: PostForm, status: int = 200) -> HttpResponse:
    categories = Article.objects.order_by("category").values_list("category", flat=True).distinct()
    context = {"form": form, "categories": list(categories[:CATEGORIES_SHOWN])}
    return render(request, "live/dashboard.html", context, status=status)
