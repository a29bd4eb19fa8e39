"""Users keyed by phone number, OTP codes, seller wallets, devices and ratings.

Phone numbers and e-mail addresses are stored encrypted (AES-256-GCM) beside a keyed blind
index used for lookup and uniqueness: a copy of the database alone reveals neither.
"""

from __future__ import annotations

import uuid

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from biddt import crypto
from biddt.fields import EncryptedTextField


class InvalidPhoneNumber(ValueError):
    pass


def normalize_phone(raw: str) -> str:
    """E.164 form of a number libphonenumber accepts as valid, else InvalidPhoneNumber."""
    try:
        parsed = phonenumbers.parse(str(raw).strip(), None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(str(exc)) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("not a valid number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def format_e164(raw: str) -> str:
    """E.164 form of a *possible* number (test numbers like +1 555 555 0100 aren't valid)."""
    try:
        parsed = phonenumbers.parse(str(raw).strip(), None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(str(exc)) from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhoneNumber("not a possible number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_index(e164: str) -> str:
    return crypto.blind_index(e164, purpose="phone")


def phone_last4_index(e164: str) -> str | None:
    """Keyed blind index of a number's last four digits, for staff search (`…0142`). Only
    10,000 values exist, so what protects them is the HMAC key, as for the full index."""
    digits = "".join(ch for ch in (e164 or "") if ch.isdigit())
    return crypto.blind_index(digits[-4:], purpose="phone_last4") if len(digits) >= 4 else None


def normalize_email(raw: str) -> str:
    return raw.strip().lower()


def email_index(email: str) -> str:
    return crypto.blind_index(normalize_email(email), purpose="email")


# What a closed account is shown as, everywhere its rows still appear (bid history,
# transactions, chat, admin); written over the name when the account is deleted.
DELETED_USER_NAME = "Deleted user"


def mask_name(display_name: str | None) -> str:
    """A display name as bid histories show it: 'j***n' ("Deleted user" stays whole)."""
    if display_name == DELETED_USER_NAME:
        return DELETED_USER_NAME
    name = (display_name or "user").strip()
    if len(name) <= 2:
        return name[0] + "***"
    return f"{name[0]}***{name[-1]}".lower()


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username: str):
        """Admin login types a phone number; look it up by its blind index."""
        try:
            return self.get(phone_index=phone_index(format_e164(username)))
        except InvalidPhoneNumber:
            raise self.model.DoesNotExist from None

    def create_user(self, phone_number: str, password: str | None = None, **extra):
        e164 = format_e164(phone_number)  # the API validates strictly; staff tools may not
        email = extra.pop("email", None)
        user = self.model(phone_number=e164, phone_index=phone_index(e164), **extra)
        if email:
            user.set_email(email)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, phone_number: str | None = None, password: str | None = None,
                         **extra):
        # `createsuperuser` passes the USERNAME_FIELD (phone_index) as typed: a phone number.
        phone_number = phone_number or extra.pop("phone_index", None)
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(phone_number, password, **extra)


class Language(models.TextChoices):
    """The languages pushes, e-mails, notifications and system chat lines are written in."""

    EN = "en", "English"
    FR = "fr", "Français"


class User(AbstractBaseUser, PermissionsMixin):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        BANNED = "banned", "Banned"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phone_number = EncryptedTextField(editable=False)
    phone_index = models.CharField("phone number", max_length=64, unique=True, editable=False)
    # Staff search by the last four digits (see phone_last4_index); set on save.
    phone_last4_index = models.CharField(max_length=64, null=True, blank=True, editable=False,
                                         db_index=True)
    email = EncryptedTextField(blank=True, default="", editable=False)
    email_index = models.CharField(max_length=64, null=True, blank=True, editable=False)
    display_name = models.CharField(max_length=50, blank=True, default="")
    avatar = models.ImageField(upload_to="avatars/%Y/%m/", blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE,
                              db_index=True)
    status_reason = models.CharField(max_length=255, blank=True, default="")
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    language = models.CharField(max_length=8, choices=Language.choices, default=Language.EN)
    # Set when the account was closed (`DELETE /v1/users/me` or staff): personal data erased,
    # the row kept for the money records and shown as "Deleted user".
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Denormalised counters, updated in the same transaction as the rating or sale, so
    # listing pages show seller ratings without an aggregate per row.
    rating_count = models.PositiveIntegerField(default=0)
    rating_total = models.PositiveIntegerField(default=0)
    completed_sales = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["phone_number", "email", "password", "last_login"])

    objects = UserManager()

    USERNAME_FIELD = "phone_index"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["email_index"], condition=Q(email_index__isnull=False),
                                    name="uniq_user_email_index"),
            models.CheckConstraint(condition=Q(rating_total__lte=5 * models.F("rating_count")),
                                   name="user_rating_total_bounded"),
        ]

    def __str__(self) -> str:
        return self.display_name or f"user {str(self.id)[:8]}"

    def save(self, *args, **kwargs):
        self.phone_last4_index = phone_last4_index(self.phone_number)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "phone_number" in update_fields:
            kwargs["update_fields"] = {*update_fields, "phone_last4_index"}
        super().save(*args, **kwargs)

    def get_short_name(self) -> str:
        """What the staff console greets with (the username field is a blind index)."""
        return str(self)

    def set_email(self, email: str | None) -> None:
        if email:
            self.email = normalize_email(email)
            self.email_index = email_index(email)
        else:
            self.email = ""
            self.email_index = None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def is_suspended(self) -> bool:
        return self.status != self.Status.ACTIVE

    @property
    def rating_avg(self) -> float | None:
        if not self.rating_count:
            return None
        return round(self.rating_total / self.rating_count, 2)

    @property
    def masked_name(self) -> str:
        """'j***n' style, for bid histories."""
        return mask_name(self.display_name)


class PhoneOTP(models.Model):
    """A one-time login code. Only its keyed hash is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    phone_index = models.CharField(max_length=64)
    code_hash = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)
    requested_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "phone OTP"
        verbose_name_plural = "phone OTPs"
        indexes = [models.Index(fields=["phone_index", "-created_at"], name="otp_phone_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(attempts__lte=100), name="otp_attempts_bounded"
            )
        ]

    def __str__(self) -> str:
        return f"OTP {str(self.id)[:8]}"


class Wallet(models.Model):
    """A seller's payout account (a Stripe Express connected account)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Onboarding pending"
        ACTIVE = "active", "Active"
        RESTRICTED = "restricted", "Restricted"
        DISABLED = "disabled", "Disabled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                related_name="wallet")
    stripe_account_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    currency = models.CharField(max_length=3, default="CAD")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    charges_enabled = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"wallet of {self.user}"


class Device(models.Model):
    """A mobile push token (Firebase Cloud Messaging)."""

    class Platform(models.TextChoices):
        IOS = "ios", "iOS"
        ANDROID = "android", "Android"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="devices")
    token = models.CharField(max_length=4096)
    token_index = models.CharField(max_length=64, unique=True, editable=False)
    platform = models.CharField(max_length=16, choices=Platform.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.platform} device of {self.user}"


class Rating(models.Model):
    """One rating per party per transaction, given after release."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    transaction = models.ForeignKey("escrow.Transaction", on_delete=models.CASCADE,
                                    related_name="ratings")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="ratings_given")
    ratee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="ratings_received")
    score = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(blank=True, default="", max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transaction", "rater"], name="uniq_rating_per_party"),
            models.CheckConstraint(condition=Q(score__gte=1) & Q(score__lte=5),
                                   name="rating_score_1_5"),
            models.CheckConstraint(condition=~Q(rater=models.F("ratee")), name="rating_not_self"),
        ]
        indexes = [models.Index(fields=["ratee", "-created_at"], name="rating_ratee_recent")]

    def __str__(self) -> str:
        return f"{self.score}★ for {self.ratee}"
