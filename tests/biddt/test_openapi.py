"""The OpenAPI document (`/v1/schema/`), its docs page, and JSON errors for unknown URLs."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator

AUTH_AND_USERS = {
    "/v1/auth/phone/send-code": {"post"},
    "/v1/auth/phone/verify": {"post"},
    "/v1/auth/refresh": {"post"},
    "/v1/auth/logout": {"delete"},
    "/v1/users/me": {"get", "patch"},
    "/v1/users/me/devices": {"post"},
    "/v1/users/{user_id}/profile": {"get"},
}
HTTP_METHODS = {"get", "put", "patch", "post", "delete", "head", "options", "trace"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_spectacular_validates_without_warnings(tmp_path):
    # when the schema is generated and validated as CI does, failing on any warning
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    # then it is written and is an OpenAPI 3 document
    document = yaml.safe_load(out.read_text())
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Biddt API"


def test_schema_lists_every_auth_and_users_endpoint(schema):
    # then each documented call of the auth/users part is in the schema with its methods
    for path, methods in AUTH_AND_USERS.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]) & HTTP_METHODS, path


def test_authenticated_endpoints_declare_bearer_auth(schema):
    # Clients generate their auth from the schema: /v1/users/me must say it needs a JWT.
    schemes = schema.get("components", {}).get("securitySchemes", {})
    bearer = [name for name, s in schemes.items()
              if s.get("type") == "http" and s.get("scheme") == "bearer"]
    assert bearer, schemes
    for method in ("get", "patch"):
        security = schema["paths"]["/v1/users/me"][method].get("security", [])
        assert any(name in entry for entry in security for name in bearer), security


def test_login_endpoints_need_no_token(schema):
    for path in ("/v1/auth/phone/send-code", "/v1/auth/phone/verify", "/v1/auth/refresh"):
        operation = schema["paths"][path]["post"]
        assert operation.get("security") in (None, [{}]), path


def test_docs_serve_swagger_ui(client):
    # when a browser opens the API docs
    response = client.get("/v1/docs/")
    # then it gets the Swagger UI page pointing at the schema
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "swagger-ui" in html.lower()
    assert "/v1/schema/" in html


def test_docs_assets_are_served_locally(client, settings):
    # given the static files collected as a deployment does
    from django.contrib.staticfiles import finders

    # when a browser opens the API docs with no internet
    html = client.get("/v1/docs/").content.decode()
    # then every script and stylesheet comes from this server, none from a CDN
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith(settings.STATIC_URL) or asset.startswith("/" + settings.STATIC_URL)
        relative = asset.split(settings.STATIC_URL.strip("/") + "/", 1)[1]
        assert finders.find(relative), asset
    assert "cdn" not in html.lower()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "accept", "content_type", "load"),
    [
        ("", "application/vnd.oai.openapi", "application/vnd.oai.openapi", yaml.safe_load),
        ("?format=json", "*/*", "application/vnd.oai.openapi+json", yaml.safe_load),
    ],
)
def test_schema_endpoint_serves_the_document(client, query, accept, content_type, load):
    # when a client fetches the schema without logging in
    response = client.get(f"/v1/schema/{query}", HTTP_ACCEPT=accept)
    # then it gets the OpenAPI document listing the auth and users endpoints
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith(content_type)
    document = load(response.content)
    assert document["openapi"].startswith("3.")
    assert set(AUTH_AND_USERS) <= set(document["paths"])


# --- Unknown URLs ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/nope", "/v1/users/me/", "/v1/auth/phone/send-code/x",
                                  "/v1/users/not-a-uuid/profile", "/nowhere"])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_url_is_a_json_404(client, path, method):
    # given production-like settings (handler404 applies when DEBUG is off)
    with override_settings(DEBUG=False):
        # when a client calls a URL that doesn't exist
        response = getattr(client, method)(path)
    # then it gets the standard error shape, as JSON
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "type": "client_error",
        "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}],
    }


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/v1/nothing-here", "/v1/listings/not-a-uuid",
                                  "/v1/transactions/123/qr", "/v1/listings/"])
def test_unknown_api_paths_answer_json_404_in_any_mode(client, settings, debug, path):
    settings.DEBUG = debug
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"type": "client_error", "errors": [
        {"code": "not_found", "detail": "Not found.", "attr": None}]}
