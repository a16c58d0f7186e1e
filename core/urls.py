from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path

from consumers import rows
from core import health, metrics, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("posts/", views.create_post, name="create_post"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("live/rows/<str:stream>/<int:row_id>", rows.row, name="live_row"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.scrape, name="metrics"),
    # daphne serves no files itself: Django's staticfiles finders serve the few static files
    # (static/ and the admin's), in production too (`insecure` lifts the DEBUG-only guard).
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
]
