"""`GET /v1/asyncapi.json`: the AsyncAPI 3.0 document of `/ws/`, generated from the socket
message registry (biddt.socket_messages). Public, like `/v1/schema/`."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from biddt.socket_messages import asyncapi_document


@require_GET
def asyncapi_view(request):
    scheme = "wss" if request.is_secure() else "ws"
    document = asyncapi_document(server_url=f"{scheme}://{request.get_host()}")
    return JsonResponse(document, json_dumps_params={"ensure_ascii": False})
