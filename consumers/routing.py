"""Websocket URLs (core/asgi.py wraps them in origin checks and session auth)."""

from django.urls import path

from consumers.live import LiveConsumer

websocket_urlpatterns = [path("ws/live/", LiveConsumer.as_asgi())]
