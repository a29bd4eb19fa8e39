"""Notification endpoints: list (unread filter), mark one read, read all, unread count."""

from __future__ import annotations

import pytest

from notifications.models import Notification
from notifications.services import notify
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def make(user, n=1, **kw):
    return [notify(user_id=user.pk, type=kw.get("type", "outbid"), title=f"t{i}", body="b",
                   data={"listing_id": "x"}) for i in range(n)]


def test_list_returns_the_callers_items_newest_first(auth_api, user):
    # given
    make(user, 3)
    make(UserFactory(), 2)
    # when
    body = auth_api.get("/v1/notifications").json()
    # then
    assert set(body) == {"next", "previous", "results"}
    assert [n["title"] for n in body["results"]] == ["t2", "t1", "t0"]
    assert set(body["results"][0]) == {"id", "type", "title", "body", "data", "read_at",
                                       "created_at"}


def test_unread_filter_and_mark_read(auth_api, user):
    first, second = make(user, 2)
    response = auth_api.patch(f"/v1/notifications/{first.id}/read")
    assert response.status_code == 200
    assert response.json()["read_at"] is not None
    unread = auth_api.get("/v1/notifications?unread=true").json()["results"]
    assert [n["id"] for n in unread] == [str(second.id)]
    assert auth_api.get("/v1/notifications/unread-count").json() == {"unread": 1}


def test_marking_read_twice_keeps_the_first_time(auth_api, user):
    (item,) = make(user)
    first = auth_api.patch(f"/v1/notifications/{item.id}/read").json()["read_at"]
    second = auth_api.patch(f"/v1/notifications/{item.id}/read").json()["read_at"]
    assert first == second


def test_another_users_notification_is_404(auth_api):
    (theirs,) = make(UserFactory())
    response = auth_api.patch(f"/v1/notifications/{theirs.id}/read")
    assert response.status_code == 404
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_read_all(auth_api, user):
    make(user, 3)
    (other,) = make(UserFactory())
    assert auth_api.patch("/v1/notifications/read-all").json() == {"updated": 3}
    assert auth_api.get("/v1/notifications/unread-count").json() == {"unread": 0}
    assert Notification.objects.get(pk=other.pk).read_at is None


def test_pagination_walks_every_item_once(auth_api, user):
    make(user, 45)
    seen, url = [], "/v1/notifications?page_size=20"
    while url:
        body = auth_api.get(url).json()
        seen += [n["id"] for n in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == 45


def test_notify_dedupes_by_event_key(user):
    assert notify(user_id=user.pk, type="won", title="You won", dedupe_key="won:1") is not None
    assert notify(user_id=user.pk, type="won", title="You won", dedupe_key="won:1") is None
    assert Notification.objects.filter(user=user).count() == 1


def test_anonymous_is_401(api):
    assert api.get("/v1/notifications").status_code == 401
