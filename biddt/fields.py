"""Model fields for encrypted personal data."""

from __future__ import annotations

from django.db import models

from biddt import crypto


class EncryptedTextField(models.TextField):
    """A text column holding AES-256-GCM ciphertext; Python code sees the plain value.

    It can't be filtered or ordered on (the ciphertext is randomised): pair it with a blind
    index column for lookups.
    """

    description = "Text encrypted at rest (AES-256-GCM)"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(str(value))
