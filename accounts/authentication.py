"""JWT authentication (simplejwt) that also refuses inactive accounts."""

from __future__ import annotations

from functools import cache

from django.db import connections, router
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

# Columns no authenticated request reads from `request.user` on its way through: the two
# encrypted ones (never decrypted unless read) and the password hash. A view that does read
# one (`/v1/me`) loads it then, from the primary key (Django's deferred fields).
DEFERRED_USER_FIELDS = ("phone_number", "email", "password")


@cache
def _user_query(model) -> tuple[str, list[str]]:
    fields = [f for f in model._meta.concrete_fields if f.attname not in DEFERRED_USER_FIELDS]
    pk = model._meta.pk.column
    sql = (f"SELECT {', '.join(f.column for f in fields)} "  # noqa: S608 - model metadata only
           f"FROM {model._meta.db_table} WHERE {pk} = %s")
    return sql, [f.attname for f in fields]


def user_by_id(model, user_id):
    """The user row without its deferred columns, or None.

    One SQL statement written from the model's metadata: the ORM's `get()` (queryset clone,
    compiler, column list) cost several times the query's own CPU on every authenticated
    request; `Model.from_db` builds the instance as the ORM would, the columns left out
    deferred."""
    sql, names = _user_query(model)
    try:
        pk = model._meta.pk.to_python(user_id)
    except Exception:  # noqa: BLE001 - a claim that is no id names no user
        return None
    db = router.db_for_read(model)
    with connections[db].cursor() as cursor:
        cursor.execute(sql, [model._meta.pk.get_db_prep_value(pk, connections[db])])
        row = cursor.fetchone()
    return None if row is None else model.from_db(db, names, row)


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
            raise AuthenticationFailed(_("User not found"), code="user_not_found")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN:
            # simplejwt's check reads the password hash: only then is it loaded.
            return super().get_user(validated_token)
        return user


def user_from_access_token(raw: str):
    """The active user an access token names, or None when the token or user is not valid."""
    try:
        token = AccessToken(raw)
        return JWTAuthentication().get_user(token)
    except (TokenError, InvalidToken):
        return None
    except Exception:  # noqa: BLE001 - a malformed claim is just an invalid token
        return None
