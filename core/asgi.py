"""ASGI entry point: HTTP through Django, websockets through Channels (consumers/routing.py),
behind connection caps (core/connection_limits.py) and the origin check (core/origins.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from consumers.edge import keep_server_send  # noqa: E402
from consumers.routing import websocket_urlpatterns  # noqa: E402
from core.connection_limits import ConnectionLimits  # noqa: E402
from core.file_limit import warn_if_file_limit_low  # noqa: E402
from core.origins import OriginCheck  # noqa: E402

warn_if_file_limit_low("web")
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": keep_server_send(
            ConnectionLimits(OriginCheck(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))))
        ),
    }
)
