"""ASGI entry point: HTTP (Django) and WebSocket on /ws/ (Channels)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biddt.settings")
django.setup(set_prefix=False)

from biddt.http import ThreadedASGIHandler, leave_request_bodies_to_django  # noqa: E402

leave_request_bodies_to_django()
django_asgi_app = ThreadedASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from biddt.consumers import BiddtConsumer  # noqa: E402
from biddt.scheduler import start_embedded_scheduler  # noqa: E402
from biddt.ws_auth import JWTAuthMiddleware  # noqa: E402

# No Origin check: the mobile apps send none, and sockets authenticate with a bearer token,
# never a cookie, so a foreign page can't ride a user's session.
websocket_app = JWTAuthMiddleware(URLRouter([path("ws/", BiddtConsumer.as_asgi())]))

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_app})

start_embedded_scheduler()
