"""ASGI entry point: WebSocket on /ws/ (Channels), and HTTP (Django) for `make run`.

In production the socket processes serve this application and only /ws/ reaches them
(nginx routes the rest to the WSGI processes, biddt/wsgi.py). `make run` serves everything
from this one application on one port; Django's own ASGI handler does the HTTP side.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biddt.settings")
# Sets Django up before the Channels imports below touch the models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from biddt.consumers import BiddtConsumer  # noqa: E402
from biddt.scheduler import start_embedded_scheduler  # noqa: E402

# No Origin check: the mobile apps send none, and sockets authenticate with a bearer token,
# never a cookie, so a foreign page can't ride a user's session.
# The token check is the accounts app's (accounts/ws_auth.py), named in settings as urls.py
# names the apps' routes.
JWTAuthMiddleware = import_string(settings.BIDDT_WS_AUTH_MIDDLEWARE)
websocket_app = JWTAuthMiddleware(URLRouter([path("ws/", BiddtConsumer.as_asgi())]))

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_app})

start_embedded_scheduler()
