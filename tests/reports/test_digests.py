"""Weekly digests from a hand-built book: the CSM's sections and the leader's, once per
ISO week through the outbox, with a link back and an unsubscribe link that works without
signing in (GET asks, POST unsubscribes)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import TimelineEntry
from metrics.models import AccountStanding, KpiSnapshot
from playbooks.models import Cta, Playbook
from reports import services
from reports.models import DigestSubscription, KpiTarget
from tests.conftest import _user
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 23)  # a Monday: the digest covers [11-16, 11-23)


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _fact(account, kind, day, key, title="", **data):
    return TimelineEntry.objects.create(
        account=account, kind=kind, key=key, occurred_at=_at(day), title=title, data=data
    )


def _cta(playbook, account, owner, title, opened: dt.date, due: dt.date, status="open"):
    return Cta.objects.create(
        playbook=playbook,
        playbook_version=1,
        account=account,
        owner=owner,
        title=title,
        cta_type="risk",
        priority="high",
        status=status,
        evidence="by hand",
        opened_at=_at(opened),
        opened_on=opened,
        due_at=_at(due),
        followup_on=opened,
        success_deadline=due,
    )


@pytest.fixture
def book(csm, manager, no_default_targets):
    from accounts.models import Role

    other = _user("other@example.com", Role.CSM, manager=manager)
    a = AccountFactory(name="Alpha", owner=csm)
    b = AccountFactory(name="Bravo", owner=csm)
    c = AccountFactory(name="Charlie", owner=csm)
    x = AccountFactory(name="Xray", owner=other)
    # band changes: Alpha in the week (in), Bravo the week before (out), Xray not the CSM's
    _fact(
        a,
        "health_band_changed",
        dt.date(2026, 11, 20),
        "health-band:2026-11-20",
        **{"from": "yellow", "to": "red", "as_of": "2026-11-20"},
    )
    _fact(
        b,
        "health_band_changed",
        dt.date(2026, 11, 10),
        "health-band:2026-11-10",
        **{"from": "green", "to": "yellow", "as_of": "2026-11-10"},
    )
    _fact(
        x,
        "health_band_changed",
        dt.date(2026, 11, 20),
        "health-band:2026-11-20",
        **{"from": "green", "to": "red", "as_of": "2026-11-20"},
    )
    # answers: Charlie's NPS 3 in the week (a detractor); Alpha's NPS 9 (a promoter) and a
    # CSAT 1 (unhappy, but not an NPS detractor); Bravo's NPS 2 a month ago
    _fact(
        c,
        "survey_answer",
        dt.date(2026, 11, 19),
        "survey-response:1",
        "NPS 3 from Dana",
        survey_kind="nps",
        score=3,
        unhappy=True,
    )
    _fact(
        a,
        "survey_answer",
        dt.date(2026, 11, 19),
        "survey-response:2",
        "NPS 9 from Eve",
        survey_kind="nps",
        score=9,
        unhappy=False,
    )
    _fact(
        a,
        "survey_answer",
        dt.date(2026, 11, 19),
        "survey-response:3",
        "CSAT 1 from Eve",
        survey_kind="csat",
        score=1,
        unhappy=True,
    )
    _fact(
        b,
        "survey_answer",
        dt.date(2026, 10, 20),
        "survey-response:4",
        "NPS 2 from Finn",
        survey_kind="nps",
        score=2,
        unhappy=True,
    )
    # CTAs: new this week (Alpha), overdue from before (Bravo), done and overdue (out),
    # the other CSM's (out)
    playbook = Playbook.objects.create(
        name="Test playbook",
        trigger="health_band_dropped",
        cta_title="x",
        success="health_recovered",
    )
    _cta(playbook, a, csm, "Call Alpha about usage", dt.date(2026, 11, 18), dt.date(2026, 11, 30))
    _cta(playbook, b, csm, "Renewal prep Bravo", dt.date(2026, 11, 1), dt.date(2026, 11, 10))
    _cta(
        playbook, c, csm, "Old done one", dt.date(2026, 11, 1), dt.date(2026, 11, 5), status="done"
    )
    _cta(playbook, x, other, "Xray call", dt.date(2026, 11, 18), dt.date(2026, 11, 19))
    # renewals: within 30 days [11-23, 12-23] only Alpha
    for account, renewal in (
        (a, dt.date(2026, 12, 10)),
        (b, dt.date(2027, 1, 15)),
        (c, dt.date(2026, 11, 20)),
        (x, dt.date(2026, 12, 1)),
    ):
        AccountStanding.objects.create(account=account, day=TODAY, renewal_on=renewal)
    # the leader's KPIs: the snapshot of 11-22 of the manager's team, written by hand; the
    # targets are the team's, but for one of the whole book, which only admins see
    team = {"scope_kind": "team", "scope_key": str(manager.pk)}
    KpiSnapshot.objects.create(
        day=dt.date(2026, 11, 22),
        **team,
        period_start=dt.date(2026, 10, 23),
        period_end=dt.date(2026, 11, 23),
        report={
            "retention": {"nrr": {"value": "95.5"}, "grr": {"value": "92"}},
            "voice_of_customer": {"csat": {"value": None}},
        },
    )
    KpiTarget.objects.create(
        kpi="nrr", direction="at_least", value=100, cadence="weekly", owner=manager, **team
    )
    KpiTarget.objects.create(kpi="grr", direction="at_least", value=90, cadence="weekly", **team)
    KpiTarget.objects.create(kpi="csat", direction="at_least", value=80, cadence="monthly", **team)
    KpiTarget.objects.create(kpi="nrr", direction="at_least", value=50, cadence="weekly")
    return {"a": a, "b": b, "c": c, "x": x, "other": other}


def test_csm_digest_content(csm, book):
    d = services.digest_for(csm, today=TODAY)
    assert d["role"] == "csm"
    assert [(e.account.name, e.data["to"]) for e in d["band_changes"]] == [("Alpha", "red")]
    assert [c.title for c in d["new_ctas"]] == ["Call Alpha about usage"]
    assert [c.title for c in d["overdue_ctas"]] == ["Renewal prep Bravo"]
    assert [s.account.name for s in d["renewals"]] == ["Alpha"]
    assert [e.title for e in d["detractors"]] == ["NPS 3 from Dana"]


def test_csm_digest_leaves_churned_accounts_out(csm, book):
    """Delta churned: still scored, so its band change of the week is recorded, and its
    last contract ends within 30 days; neither is news for the CSM."""
    from accounts.models import AccountLifecycle

    d = AccountFactory(name="Delta", owner=csm, lifecycle_stage=AccountLifecycle.CHURNED)
    _fact(
        d,
        "health_band_changed",
        dt.date(2026, 11, 21),
        "health-band:2026-11-21",
        **{"from": "yellow", "to": "red", "as_of": "2026-11-21"},
    )
    AccountStanding.objects.create(account=d, day=TODAY, renewal_on=dt.date(2026, 12, 1))
    digest = services.digest_for(csm, today=TODAY)
    assert [e.account.name for e in digest["band_changes"]] == ["Alpha"]
    assert [s.account.name for s in digest["renewals"]] == ["Alpha"]


def test_leader_digest_content(manager, admin_user, book):
    d = services.digest_for(manager, today=TODAY)
    assert d["role"] == "leader"
    # the team's targets only: the whole book's NRR target is not the manager's to see
    states = {r["label"]: (r["value"], r["state"]) for r in d["kpis"]}
    # NRR 95.5 < 100: off; GRR 92 >= 90: on; CSAT null: no data
    assert states == {
        "NRR": ("95.5%", "off track"),
        "GRR": ("92.0%", "on track"),
        "CSAT": ("no data", "no data"),
    }
    assert {r["scope"] for r in d["kpis"]} == {"the team of Max (manager@example.com)"}
    assert [r["label"] for r in d["off"]] == ["NRR"]
    # an admin's digest has every target, the whole book's too (no snapshot of it: no data)
    everything = services.digest_for(admin_user, today=TODAY)["kpis"]
    assert sorted((r["label"], r["scope"]) for r in everything) == [
        ("CSAT", "the team of Max (manager@example.com)"),
        ("GRR", "the team of Max (manager@example.com)"),
        ("NRR", "all accounts"),
        ("NRR", "the team of Max (manager@example.com)"),
    ]


def test_digests_are_sent_once_a_week_to_subscribers_with_links(
    settings,
    client,
    csm,
    manager,
    admin_user,
    book,
    celery_eager,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
):
    settings.SITE_URL = "https://cs.example.com"
    services.digest_subscribe(csm, weekly=True)
    services.digest_subscribe(manager, weekly=True)
    services.digest_subscribe(admin_user, weekly=False)
    # 21: the subscribers with their groups (2); the CSM's band changes, detractors,
    # renewals, new and overdue CTAs (5); the leader's latest day, targets and snapshots (3),
    # the team whose targets the manager may see and the team's name (2); each email's
    # outbox row (its lookup and insert in a savepoint, and the delivery claim)
    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(21):
        assert services.digests_send(today=TODAY) == 2
    by_to = {m.to[0]: m for m in mail.outbox}
    assert set(by_to) == {csm.email, manager.email}
    text = by_to[csm.email].body
    for line in (
        "- Alpha: yellow -> red on 20 Nov 2026",
        # due at 10:00 UTC (``_at``), not the end of a day: the day and the time, as pages say it
        "- Alpha: Call Alpha about usage (due by 30 Nov 2026, 10:00 UTC)",
        "- Bravo: Renewal prep Bravo (was due by 10 Nov 2026, 10:00 UTC)",
        "- Alpha: 10 Dec 2026",
        "- Charlie: NPS 3 from Dana",
        "Open: https://cs.example.com/",
    ):
        assert line in text, line
    assert "Xray" not in text and "Old done one" not in text
    lead = by_to[manager.email].body
    assert (
        "- NRR (the team of Max (manager@example.com)): 95.5%, target ≥ 100.0%, "
        "owner manager@example.com"
    ) in lead
    assert "all accounts" not in lead  # the whole book's target is for admins
    assert "https://cs.example.com/targets/off-track/" in lead
    assert by_to[manager.email].alternatives  # the HTML part

    # the same week again (a second beat run): nothing new
    with django_capture_on_commit_callbacks(execute=True):
        services.digests_send(today=TODAY + dt.timedelta(days=2))
    assert len(mail.outbox) == 2

    # the unsubscribe link works without signing in: GET asks, POST unsubscribes
    link = re.search(r"Unsubscribe from this digest: (\S+)", text).group(1)
    path = link.removeprefix("https://cs.example.com")
    page = client.get(path)
    assert page.status_code == 200 and b"Unsubscribe" in page.content
    assert DigestSubscription.objects.get(user=csm).weekly  # a GET changes nothing
    assert client.post(path).status_code == 200
    assert not DigestSubscription.objects.get(user=csm).weekly
    # a forged token
    assert client.get("/digest/unsubscribe/not-a-token/").status_code == 404
    assert client.post(path[:-3] + "xyz/").status_code == 404


def test_the_digest_page_subscribes(client, csm):
    client.force_login(csm)
    assert client.post("/digest/", {"weekly": "on"}).status_code == 302
    assert DigestSubscription.objects.get(user=csm).weekly
    assert client.post("/digest/", {}).status_code == 302
    assert not DigestSubscription.objects.get(user=csm).weekly


def test_the_digest_page_says_when_no_email_goes_out(client, csm, manager):
    """A quiet week sends nothing; a leader is also told that their digest needs a target
    they can see, with the way to the targets (a CSM's page has no such link: the targets
    are for leaders)."""
    client.force_login(csm)
    page = client.get("/digest/").content.decode()
    assert "A week with nothing in any of them sends no email." in page
    targets = reverse("reports:targets")
    assert targets not in page.split('<header class="page-header">')[1]
    client.force_login(manager)
    page = client.get("/digest/").content.decode()
    assert (
        "A week with nothing in any of them sends no email, nor does a leader's while no "
        f'target covers what they see (<a href="{targets}">KPI targets</a>).'
    ) in page


def test_csm_digest_renewals_count_from_the_data_day_and_say_which(csm, settings):
    """The night last scored the book two days before the Monday (D = 11-21): "renewals in
    the next 30 days" are those within 30 days of D, [11-21, 12-21], and the email names D."""
    settings.SITE_URL = "https://cs.example.com"
    d = TODAY - dt.timedelta(days=2)  # 21 Nov 2026
    for name, renewal in (
        ("Soon", dt.date(2026, 11, 22)),  # D+1: listed, though before the Monday
        ("Edge", dt.date(2026, 12, 21)),  # D+30: listed
        ("Past", dt.date(2026, 12, 22)),  # D+31: not listed, though 29 days from the Monday
    ):
        AccountStanding.objects.create(
            account=AccountFactory(name=name, owner=csm), day=d, renewal_on=renewal
        )
    content = services.digest_for(csm, today=TODAY)
    assert [s.account.name for s in content["renewals"]] == ["Soon", "Edge"]
    assert content["renewals_as_of"] == "as of 21 Nov 2026"
    services.digest_send(csm, today=TODAY)
    from outbox.models import Message

    text = Message.objects.get(source="digest").payload["text"]
    assert "Renewals in the next 30 days, as of 21 Nov 2026 (2):" in text
