"""WSGI entry point: REST, admin, docs and static files (everything but /ws/).

Served by granian's WSGI interface in production (see README "Servers"): each request runs
Django's middleware and view on one of the server's threads, start to finish, so the thread
keeps its database connection between requests (`DATABASE_CONN_MAX_AGE`). Sockets (/ws/)
are served by the ASGI application in biddt/asgi.py on their own processes; room events
cross from these processes to theirs through the Redis channel layer (biddt/events.py).
"""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biddt.settings")

_CHUNK = 64 * 1024


def read_unread_body(app):
    """Read what the view left of the request body before the response goes out.

    A view that answers without reading the body (a 401 before parsing, a 404, a throttled
    call) leaves it on the connection; granian then drops that kept-alive connection without
    saying so, and the client's next request on it fails with "server disconnected" (seen
    for ~1 in 6 refused 300 KB bodies). Draining it, as gunicorn does itself, keeps the
    connection usable. Bodies past the upload limit are not read: Django refuses them
    anyway, and the connection may then close.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE * 2

    def drained(environ, start_response):
        response = app(environ, start_response)
        stream = environ.get("wsgi.input")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if stream is not None and 0 < length <= limit:
            # Django reads through its own LimitedStream; what it read is gone from here.
            while stream.read(_CHUNK):
                pass
        return response

    return drained


application = read_unread_body(get_wsgi_application())

from biddt.scheduler import start_embedded_scheduler  # noqa: E402

start_embedded_scheduler()
