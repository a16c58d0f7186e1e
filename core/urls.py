from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from consumers import rows
from core import authors, health, metrics, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("posts/", views.create_post, name="create_post"),
    path("api/authors", authors.authors, name="authors"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("live/rows/<str:stream>/<int:row_id>", rows.row, name="live_row"),
    path("live/streams", rows.streams, name="live_streams"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.scrape, name="metrics"),
    # daphne serves no files itself: Django's staticfiles finders serve the few static files
    # (static/ and the admin's), in production too (`insecure` lifts the DEBUG-only guard).
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
    # pages name their icon; this is for those that do not (the admin's) and for other tools
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
]
