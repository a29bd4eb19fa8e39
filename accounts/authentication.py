"""JWT authentication (simplejwt) that also refuses inactive accounts."""

from __future__ import annotations

from functools import cache

from django.db import connections, router
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from biddt.db_router import use_primary

# Columns no authenticated request reads from `request.user` on its way through: the two
# encrypted ones (never decrypted unless read) and the password hash. A view that does read
# one (`/v1/me`) loads it then, from the primary key (Django's deferred fields).
DEFERRED_USER_FIELDS = ("phone_number", "email", "password")


@cache
def _user_query(model, alias: str) -> tuple[str, list[str], list]:
    """SQL, attribute names and each column's converters (SQLite returns text for times)."""
    connection = connections[alias]
    fields = [f for f in model._meta.concrete_fields if f.attname not in DEFERRED_USER_FIELDS]
    table = model._meta.db_table
    sql = (f"SELECT {', '.join(f.column for f in fields)} "  # noqa: S608 - model metadata only
           f"FROM {table} WHERE {model._meta.pk.column} = %s")
    converters = []
    for field in fields:
        column = field.get_col(table)
        converters.append((column, [*connection.ops.get_db_converters(column),
                                    *field.get_db_converters(connection)]))
    return sql, [f.attname for f in fields], converters


def user_by_id(model, user_id):
    """The user row without its deferred columns, or None.

    One SQL statement written from the model's metadata: the ORM's `get()` (queryset clone,
    compiler, column list) cost several times the query's own CPU on every authenticated
    request. The values go through the fields' database converters and `Model.from_db`
    builds the instance as the ORM would, the columns left out deferred."""
    try:
        pk = model._meta.pk.to_python(user_id)
    except Exception:  # noqa: BLE001 - a claim that is no id names no user
        return None
    db = router.db_for_read(model)
    connection = connections[db]
    sql, names, converters = _user_query(model, db)
    with connection.cursor() as cursor:
        cursor.execute(sql, [model._meta.pk.get_db_prep_value(pk, connection)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for value, (column, funcs) in zip(row, converters, strict=True):
        for func in funcs:
            value = func(value, column, connection)
        values.append(value)
    return model.from_db(db, names, values)


class JWTAuthentication(BaseJWTAuthentication):
    """`Authorization: Bearer <access>`; a banned (inactive) user's token stops working at once.

    simplejwt's own `get_user`, the user read by one plain SELECT with the user's encrypted
    columns left unread (the suspension status and `is_active` are loaded, so every policy
    check still sees the row as it is)."""

    def get_user(self, validated_token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken(_("Token contained no recognizable user identification")) \
                from exc
        if api_settings.USER_ID_FIELD != self.user_model._meta.pk.name:
            return super().get_user(validated_token)
        user = user_by_id(self.user_model, user_id)
        if user is None:
            raise AuthenticationFailed(_("User not found"), code="token_not_valid")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="token_not_valid")
        if api_settings.CHECK_REVOKE_TOKEN:
            # simplejwt's check reads the password hash: only then is it loaded.
            return super().get_user(validated_token)
        return user

    def authenticate(self, request):
        # From the primary even in a browse view on the read replica: an account created or
        # banned a moment ago may not have reached the replica yet (biddt.db_router).
        with use_primary():
            return super().authenticate(request)


def user_from_access_token(raw: str):
    """The active user an access token names, or None when the token or user is not valid."""
    try:
        token = AccessToken(raw)
        return JWTAuthentication().get_user(token)
    except (TokenError, InvalidToken):
        return None
    except Exception:  # noqa: BLE001 - a malformed claim is just an invalid token
        return None
