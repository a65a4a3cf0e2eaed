"""What the workspace shows from the playbooks and surveys apps: open CTAs per account (with
the playbooks app's own row fragment and its step-complete / snooze buttons), CTA counts for
the queue priority, and links to their pages. The workspace is the top of the import chain,
so it may import them; each function degrades to "nothing" while an app is not there."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Count, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts import utc
from accounts.models import User

CTAS_PER_ACCOUNT = 3  # on a queue row; the account page shows them all


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def links() -> dict[str, str | None]:
    """Pages of the other apps, by what they are (None while an app is not there)."""
    return {
        "ctas": _url("playbooks:cta-list"),
        "playbooks": _url("playbooks:list"),
        "surveys": _url("surveys:campaign-list") or _url("surveys:list"),
        "survey_results": _url("surveys:results"),
    }


def _playbooks():
    try:
        from playbooks import selectors
        from playbooks.models import ACTIVE_STATUSES, OPEN_STATUSES, Cta
    except ImportError:  # the playbooks app has not landed
        return None
    return selectors, Cta, OPEN_STATUSES, ACTIVE_STATUSES


def waiting_order() -> str:
    """How CTAs waiting over an owner's cap are promoted (``playbooks.services.WAITING_ORDER``),
    for the queue's "waiting" title; empty without the playbooks app."""
    try:
        from playbooks.services import WAITING_ORDER
    except ImportError:
        return ""
    return WAITING_ORDER


def open_ctas_by_account(
    account_ids: list[int], *, user: User, per_account: int | None = None, with_steps=False
) -> dict[int, list]:
    """Open CTAs of these accounts that ``user`` may see, by account id, soonest due first,
    annotated with their step counts (the fragment's needs). One query (two with the
    steps themselves)."""
    found = _playbooks()
    if found is None or not account_ids:
        return {}
    selectors, _, open_statuses, _ = found
    rows = selectors.cta_list(user=user).filter(
        account_id__in=account_ids, status__in=open_statuses
    )
    if with_steps:
        rows = rows.prefetch_related("steps")
    out: dict[int, list] = defaultdict(list)
    for cta in rows:
        if per_account is None or len(out[cta.account_id]) < per_account:
            out[cta.account_id].append(cta)
    return dict(out)


def cta_counts(account_ids: list[int], today: dt.date) -> dict[int, tuple[int, int, int]]:
    """(open, overdue, waiting) CTAs per account, for ``metrics.standings`` (the
    ``ACCOUNT_STANDING_CTA_COUNTS`` hook). Open: not closed, pending ones included;
    overdue: active and due before today (UTC); waiting: pending (over the owner's cap,
    not in their queue yet)."""
    found = _playbooks()
    if found is None:
        return {}
    _, cta_model, open_statuses, active_statuses = found
    start = dt.datetime.combine(today, dt.time.min, tzinfo=dt.UTC)
    rows = (
        cta_model.objects.filter(account_id__in=account_ids, status__in=open_statuses)
        .values("account_id")
        .annotate(
            n=Count("pk"),
            late=Count("pk", filter=Q(status__in=active_statuses, due_at__lt=start)),
            waiting=Count("pk", filter=~Q(status__in=active_statuses)),
        )
        .values_list("account_id", "n", "late", "waiting")
    )
    return {pk: (n, late, waiting) for pk, n, late, waiting in rows}


def account_voice(account, *, as_of: dt.date) -> dict | None:
    """The voice app's fragment context for the account page (sentiment, relationship with
    its reasons, themes, north-star weeks) as of ``as_of`` (the page's data day, so that
    "last contact N days ago" counts as the health breakdown does), with the people known
    now (the page lists them beside it); None while the app is not there."""
    try:
        from voice import selectors as voice_selectors
    except ImportError:
        return None
    return voice_selectors.account_voice(account=account, as_of=as_of, known_at=timezone.now())


def north_star(user: User) -> dict | None:
    """The north star over the user's book, per week with its trend; None when no admin
    picked one (or the voice app is not there)."""
    try:
        from voice import selectors as voice_selectors
    except ImportError:
        return None
    return voice_selectors.north_star_total(user=user, as_of=utc.today())


def timeline_with_sentiments(page):
    """Give each timeline entry of ``page`` the sentiment of the text behind it (a ticket's
    subject, a CSM note) as ``entry.sentiment`` (None: not scored, or no voice app). At most
    three queries for the page, whatever its length."""
    entries = list(page.object_list)
    page.object_list = entries
    try:
        from voice import selectors as voice_selectors
    except ImportError:
        scores = {}
    else:
        scores = voice_selectors.timeline_sentiments(entries) if entries else {}
    for entry in entries:
        entry.sentiment = scores.get(entry.pk)
    return page
