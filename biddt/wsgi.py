"""WSGI entry point: REST, admin, docs and static files (everything but /ws/).

Served by granian's WSGI interface in production (see README "Servers"): each request runs
Django's middleware and view on one of the server's threads, start to finish, so the thread
keeps its database connection between requests (`DATABASE_CONN_MAX_AGE`). Sockets (/ws/)
are served by the ASGI application in biddt/asgi.py on their own processes; room events
cross from these processes to theirs through the Redis channel layer (biddt/events.py).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biddt.settings")

application = get_wsgi_application()

from biddt.scheduler import start_embedded_scheduler  # noqa: E402

start_embedded_scheduler()
