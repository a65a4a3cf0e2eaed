"""The same form sent twice makes one thing. A form carries a random key from when it was
shown (``{% form_key %}``, in ``once`` templatetags); the view claims it in the same
transaction as what the form makes (``claim``). A second send of the same form (a double
click on Save, a request resent) finds the key claimed, makes nothing and says so. Two
sends at the same instant meet the key's unique index: the second waits for the first and
then finds it claimed, never a second row and never an error page. A send refused (a field
wrong) claims nothing: the key is rolled back with the rest, so the fixed form goes through.

A form without a key (a script, a page from before) is made as before: no claim.

Keys are kept ``KEEP`` (two days), then cleared (``keys_clear``) each day: deployed by
Celery beat (``accounts.tasks.clear_old_form_keys``), in embedded mode (no beat) by the
nightly ``run_pipeline`` its cron runs. A form left open longer than that and sent twice is
not a double click."""

from __future__ import annotations

import datetime as dt
import secrets

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from .models import FormOnce

FIELD = "form_key"  # the hidden input's name
MAX_LENGTH = 64
KEEP = dt.timedelta(days=2)  # how long a claimed key is kept


def key_new() -> str:
    return secrets.token_urlsafe(16)


def key_of(data) -> str:
    """The key a form sent (``request.POST``), or "" (none, or not one of ours)."""
    key = (data.get(FIELD) or "").strip()
    return key if 0 < len(key) <= MAX_LENGTH else ""


def claim(key: str) -> bool:
    """Claim ``key`` in the caller's transaction (call it inside ``transaction.atomic``,
    before making anything): True when this send is the first, False when the same form was
    sent already (nothing to make). An empty key is always True."""
    if not key:
        return True
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction goes on
            FormOnce.objects.create(key=key)
    except IntegrityError:
        return False
    return True


def made(key: str, thing: models.Model) -> None:
    """Note what the first send made, for a second send to go to (``made_by``)."""
    if key:
        FormOnce.objects.filter(key=key).update(made=f"{thing._meta.model_name}:{thing.pk}")


def made_by(key: str, model: type[models.Model]):
    """What the first send of ``key`` made, if it is a ``model`` and still there; or None."""
    row = FormOnce.objects.filter(key=key).values_list("made", flat=True).first() if key else None
    kind, _, pk = (row or "").partition(":")
    if kind != model._meta.model_name or not pk.isdigit():
        return None
    return model.objects.filter(pk=int(pk)).first()


def keys_clear(*, now: dt.datetime | None = None) -> int:
    """Delete the keys claimed more than ``KEEP`` before ``now``; returns how many."""
    cutoff = (now or timezone.now()) - KEEP
    deleted, _ = FormOnce.objects.filter(at__lt=cutoff).delete()
    return deleted
