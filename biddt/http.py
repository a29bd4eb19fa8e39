"""The HTTP side of the ASGI application: Django's middleware and views, one thread hop each.

Django's own `ASGIHandler` runs the middleware chain in async mode. With our middleware
(sync-only ones such as django-prometheus and simple-history between async-capable ones) and
DRF's sync views, one request hops between the event loop and worker threads several times
(sync_to_async → async_to_sync → sync_to_async …), each hop a thread hand-off under the GIL,
and every request gets a new thread of its own (`ThreadSensitiveContext`). Under load that
hand-off, not our code, was most of the CPU per request, and it stretched the time a bid
holds its listing's row lock.

`ThreadedASGIHandler` does what a threaded WSGI server does: the body is read on the event
loop, then the whole request — `request_started`, the middleware chain in sync mode, the view,
`response.close()` and `request_finished` — runs in one call on a bounded thread pool
(`BIDDT_HTTP_THREADS`). The response is written back on the loop. Because a request's
database work stays on one pool thread, that thread's connection can be kept between
requests (`DATABASE_CONN_MAX_AGE`), which the per-request threads of `ASGIHandler` could not.

Streaming responses (static files) are read part by part on the pool while they are sent,
and closed after, as Django does.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import set_script_prefix

__all__ = ["ThreadedASGIHandler", "leave_request_bodies_to_django"]

_END = object()


class ThreadedASGIHandler(ASGIHandler):
    """An `ASGIHandler` whose middleware and views run in sync mode, one pool call per request."""

    def __init__(self, threads: int | None = None) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.threads = threads or settings.BIDDT_HTTP_THREADS
        self.executor = ThreadPoolExecutor(max_workers=self.threads,
                                           thread_name_prefix="biddt-http")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def handle(self, scope, receive, send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await sync_to_async(self._respond, thread_sensitive=False,
                                           executor=self.executor)(scope, body_file)
        except BaseException:
            body_file.close()
            raise
        if response.streaming and not response.is_async:
            # Read a sync iterator (a file) part by part on the pool, not all at once.
            response.streaming_content = self._parts_from_pool(response.streaming_content)
        try:
            await self.send_response(response, send)
        except asyncio.CancelledError:
            pass  # the client went away while we wrote
        finally:
            if response.streaming:
                await sync_to_async(response.close, thread_sensitive=False,
                                    executor=self.executor)()
            body_file.close()

    async def _parts_from_pool(self, iterator):
        iterator = iter(iterator)
        read = sync_to_async(next, thread_sensitive=False, executor=self.executor)
        while (part := await read(iterator, _END)) is not _END:
            yield part

    def _respond(self, scope, body_file):
        """One request on one pool thread: started signal, middleware, view, finished signal."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            response = error_response
        else:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            # The content is rendered: close now, on this thread, so `request_finished`
            # (which closes or keeps this thread's database connection) runs where the
            # connection lives.
            response.close()
        return response


def leave_request_bodies_to_django() -> bool:
    """Stop Twisted from parsing POST bodies that daphne then hands to Django anyway.

    Twisted's `Request` parses every form-encoded or multipart POST body into `request.args`
    before daphne reads it, with the e-mail package: about 30 µs of the event loop for every
    JSON POST (just to read its Content-Type), and for a 5 MB photo about 0.2 s of the loop
    (every socket of the process waits) and 60 MB of memory. A body it can't parse gets
    Twisted's bare 400, not the API's error. daphne never reads those args: it streams
    `request.content` to the application, and Django's parsers do the rest.

    Twisted's own switch for this, `Request(parsePOSTFormSubmission=False)`, is not exposed
    by daphne; this passes it to daphne's `WebRequest`. Call it before daphne serves (from the
    ASGI module, which daphne imports first). Returns False where Twisted has no such switch.
    """
    import inspect

    from daphne.http_protocol import WebRequest
    from twisted.web.http import Request

    if "parsePOSTFormSubmission" not in inspect.signature(Request.__init__).parameters:
        return False
    if getattr(WebRequest.__init__, "_biddt_unparsed_bodies", False):
        return True
    original = WebRequest.__init__

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("parsePOSTFormSubmission", False)
        original(self, *args, **kwargs)

    __init__._biddt_unparsed_bodies = True
    WebRequest.__init__ = __init__
    return True
