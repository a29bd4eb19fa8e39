from django.conf import settings
from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from biddt.asyncapi import asyncapi_view
from biddt.health import ReadyView, healthz
from biddt.metrics import metrics_view

admin.site.site_header = "Biddt staff console"
admin.site.site_title = "Biddt staff"
admin.site.site_url = "/v1/docs/"  # the admin's "View site": the API docs

v1 = [
    path("", include("privacy.api.urls")),  # before accounts: adds DELETE to users/me
    path("", include("accounts.api.urls")),
    path("", include("bidding.api.urls")),
    path("", include("listings.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("safezones.api.urls")),
    path("", include("chat.api.urls")),
    path("", include("escrow.api.urls")),
    path("", include("discovery.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("asyncapi.json", asyncapi_view, name="asyncapi"),
    # Anything else under /v1/ (an unknown path, an id that isn't a UUID) answers the JSON
    # error shape even with DEBUG on, so clients never get an HTML page from the API.
    # csrf_exempt: like the API views (token auth, no cookies), or an unknown URL called with
    # POST/PATCH/DELETE would get Django's HTML CSRF 403 instead of this 404.
    re_path(r"^.*$", csrf_exempt(lambda request, *a, **k: handler404(request)),
            name="v1-not-found"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", ReadyView.as_view(), name="readyz"),
    path("metrics", metrics_view, name="prometheus-django-metrics"),
]

if settings.DEBUG and "FileSystemStorage" in settings.STORAGES["default"]["BACKEND"]:
    urlpatterns.append(
        re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT})
    )


def _error(status: int, code: str, detail: str, type_: str) -> JsonResponse:
    return JsonResponse({"type": type_, "errors": [{"code": code, "detail": detail, "attr": None}]},
                        status=status)


def handler404(request, exception=None):
    return _error(404, "not_found", "Not found.", "client_error")


def handler500(request):
    return _error(500, "error", "A server error occurred.", "server_error")
