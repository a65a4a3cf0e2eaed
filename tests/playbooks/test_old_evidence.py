"""CTA evidence written before the one spelling of money ("(633,600.00 USD due)") reads as
the trigger writes it now ("($633,600.00 due)"): ``playbooks.services.evidence_words_reword``,
run once by a migration, so that an open CTA is not told "Matched again" for the same fact
newly spelt."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import TimelineEntry
from accounts.money import old_due_reword
from playbooks import services
from playbooks.models import Cta, CtaComment
from tests.factories import AccountFactory, UserFactory, failed_invoice

from .helpers import make_playbook

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("1 overdue invoice (633,600.00 USD due)", "1 overdue invoice ($633,600.00 due)"),
        (
            "payments 0/100: 2 overdue invoices (1,200.00 EUR due); 3 failed payments",
            "payments 0/100: 2 overdue invoices (€1,200.00 due); 3 failed payments",
        ),
        ("1 overdue invoice (99.50 CHF due)", "1 overdue invoice (CHF 99.50 due)"),
        # new words already, and an amount in another form: as they are
        ("1 overdue invoice ($633,600.00 due)", None),
        ("ARR 1,485.00 USD", None),
    ],
)
def test_an_old_overdue_amount_reads_as_it_is_written_now(old, new):
    assert old_due_reword(old) == (old if new is None else new)


def test_old_evidence_is_reworded_once_and_tells_no_open_cta_again(settings, day):
    """A $300 invoice overdue (``failed_invoice``) opens a CTA; its stored words are put
    back to the old spelling, as a CTA opened before the change has them."""
    settings.CURRENCY = "USD"
    make_playbook("payment_trouble", {"failed_payments": 5, "overdue": True})
    account = AccountFactory(owner=UserFactory())
    failed_invoice(account, day)
    assert services.playbooks_evaluate(as_of=day)["opened"] == 1
    cta = Cta.objects.get(account=account)
    assert cta.evidence == "1 overdue invoice ($300.00 due)"
    old = "1 overdue invoice (300.00 USD due)"
    Cta.objects.filter(pk=cta.pk).update(evidence=old)
    opened = TimelineEntry.objects.get(account=account, kind="cta_opened")
    TimelineEntry.objects.filter(pk=opened.pk).update(
        title=opened.title.replace("$300.00", "300.00 USD")
    )
    said = CtaComment.objects.create(cta=cta, author=None, body=f"{services.AGAIN}{old}")
    typed = CtaComment.objects.create(cta=cta, author=cta.owner, body=f"they said {old}")

    assert services.evidence_words_reword() == 3  # the CTA, the engine's comment, the fact
    assert Cta.objects.get(pk=cta.pk).evidence == "1 overdue invoice ($300.00 due)"
    assert CtaComment.objects.get(pk=said.pk).body.endswith("1 overdue invoice ($300.00 due)")
    assert CtaComment.objects.get(pk=typed.pk).body == f"they said {old}"  # a person's words
    assert TimelineEntry.objects.get(pk=opened.pk).title == opened.title
    assert services.evidence_words_reword() == 0

    # the next day's run finds the same fact in the same words: no "Matched again"
    before = CtaComment.objects.count()
    counts = services.playbooks_evaluate(
        as_of=day + dt.timedelta(days=1), account_ids=[account.pk], tell_open=True
    )
    assert counts.get("told", 0) == 0 and CtaComment.objects.count() == before


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "seat utilisation 100.0% (1 of 1 seats active in 30 days), health green",
            "seat utilisation 100.0% (1 of 1 seat active in 30 days), health green",
        ),
        (
            "health 72 → 71 between 1 Mar 2024 and 2 Mar 2024 (−1 points in 1 day)",
            "health 72 → 71 between 1 Mar 2024 and 2 Mar 2024 (−1 point in 1 day)",
        ),
        # more than one: as it is
        ("seat utilisation 90.0% (9 of 10 seats active in 30 days)", None),
        ("(−11 points in 7 days)", None),
    ],
)
def test_old_evidence_of_one_reads_in_the_singular(old, new):
    assert services.old_evidence_reword(old) == (old if new is None else new)


def test_a_one_seat_cta_is_reworded_and_others_are_not():
    account = AccountFactory(owner=UserFactory())
    playbook = make_playbook("seat_utilisation", {"at_least": 90})
    one = services.cta_open(
        playbook=playbook, account=account,
        evidence="seat utilisation 100.0% (1 of 1 seats active in 30 days)",
    )  # fmt: skip
    many = services.cta_open(
        playbook=make_playbook("ticket_escalated"), account=account,
        evidence="3 of 10 seats active",
    )  # fmt: skip
    # the CTA and its "CTA opened" fact
    assert services.evidence_words_reword() == 2
    assert Cta.objects.get(pk=one.pk).evidence.endswith("(1 of 1 seat active in 30 days)")
    assert Cta.objects.get(pk=many.pk).evidence == "3 of 10 seats active"
    fact = TimelineEntry.objects.get(key=f"cta:{one.pk}:opened")
    assert fact.title.endswith("(1 of 1 seat active in 30 days)")


def test_a_persons_comment_keeps_their_words_on_the_timeline_too():
    """A CSM's comment quoting old evidence is their own words: neither the comment nor its
    "Comment on CTA" fact is reworded (the engine's "Matched again" comment and its fact
    are)."""
    account = AccountFactory(owner=UserFactory())
    cta = services.cta_open(
        playbook=make_playbook("payment_trouble", {"failed_payments": 5, "overdue": True}),
        account=account,
        evidence="1 overdue invoice ($300.00 due)",
    )
    typed = services.cta_comment_add(
        cta=cta, body="they say (300.00 USD due) is wrong", user=cta.owner
    )
    engine = services.cta_comment_add(
        cta=cta, body=f"{services.AGAIN}1 overdue invoice (300.00 USD due)"
    )

    assert services.evidence_words_reword() == 2  # the engine's comment and its fact
    assert CtaComment.objects.get(pk=typed.pk).body == "they say (300.00 USD due) is wrong"
    fact = TimelineEntry.objects.get(key=f"cta:{cta.pk}:comment:{typed.pk}")
    assert fact.title.endswith("they say (300.00 USD due) is wrong")
    fact = TimelineEntry.objects.get(key=f"cta:{cta.pk}:comment:{engine.pk}")
    assert fact.title.endswith("1 overdue invoice ($300.00 due)")
