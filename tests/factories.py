from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from accounts.models import User


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User

    display_name = factory.Sequence(lambda n: f"tester{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        phone = kwargs.pop("phone_number", None) or f"+1416555{cls._next_phone():04d}"
        return model_class.objects.create_user(phone, **kwargs)

    _counter = 0

    @classmethod
    def _next_phone(cls) -> int:
        UserFactory._counter += 1
        return UserFactory._counter % 10000
