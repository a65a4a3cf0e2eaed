"""Answers reach their listeners in batches: the POST writes an ``AnswerToAnnounce`` row with
the answer, and ``answers_announce`` (the beat task ``announce_answers``, every 5 s) tells
the playbooks and the health recompute once per batch. Each answer is announced once, also
with two runs at the same time; a run that dies leaves its answers to the next one; an
unhappy answer still becomes a CTA through the real doors."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import TimelineEntry
from playbooks.models import Cta, Playbook
from surveys import services
from surveys.models import AnswerToAnnounce
from surveys.tasks import announce_answers
from tests.factories import AccountFactory, StakeholderFactory, UserFactory
from tests.playbooks.helpers import make_playbook

from .conftest import make_campaign, make_invitation

facts_heard: list[list[int]] = []
accounts_heard: list[set[int]] = []
lock = threading.Lock()
barrier: list[threading.Barrier] = []


def record_facts(ids):  # a TIMELINE_FACT_HOOKS listener, as the playbooks' hook is
    with lock:
        facts_heard.append(list(ids))
    if barrier:  # both runs hold a claimed batch before either goes on
        barrier[0].wait(timeout=10)


def record_accounts(ids):  # an ACCOUNT_DATA_CHANGED_HOOKS listener, as the health one is
    with lock:
        accounts_heard.append(set(ids))


@pytest.fixture
def announce(django_capture_on_commit_callbacks):
    """``answers_announce`` as the beat task runs it: its listeners' on-commit calls run."""

    def run(**kwargs) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return services.answers_announce(**kwargs)

    return run


@pytest.fixture
def listeners(settings):
    facts_heard.clear()
    accounts_heard.clear()
    barrier.clear()
    settings.TIMELINE_FACT_HOOKS = ["tests.surveys.test_announce.record_facts"]
    settings.ACCOUNT_DATA_CHANGED_HOOKS = ["tests.surveys.test_announce.record_accounts"]
    settings.SURVEY_ANNOUNCE_INLINE = False  # deployed: the beat task announces
    yield
    barrier.clear()


def _answers(n: int, *, accounts: int = 1) -> list[int]:
    """``n`` answers through the service, spread over ``accounts`` accounts; their fact ids."""
    campaign = make_campaign()
    owners = [AccountFactory() for _ in range(accounts)]
    for i in range(n):
        person = StakeholderFactory(account=owners[i % accounts])
        services.response_record(
            invitation_id=make_invitation(campaign, person).pk, score=i % 11, comment="x"
        )
    return list(
        TimelineEntry.objects.filter(kind="survey_answer")
        .order_by("id")
        .values_list("id", flat=True)
    )


@pytest.mark.django_db
def test_a_batch_announces_every_new_answer_once_then_nothing(listeners, announce):
    ids = _answers(5, accounts=2)
    assert sorted(AnswerToAnnounce.objects.values_list("entry_id", flat=True)) == ids
    assert facts_heard == [] and accounts_heard == []  # recording told nobody

    assert announce() == 5
    assert facts_heard == [ids]  # one call for the batch
    assert accounts_heard == [set(TimelineEntry.objects.values_list("account_id", flat=True))]
    assert len(accounts_heard[0]) == 2
    assert not AnswerToAnnounce.objects.exists()

    assert announce() == 0  # a second run: nothing new
    assert len(facts_heard) == 1


@pytest.mark.django_db
def test_a_run_takes_batch_after_batch_until_none_is_left(listeners, announce):
    ids = _answers(7)
    assert announce(limit=3) == 7
    assert facts_heard == [ids[:3], ids[3:6], ids[6:]]


@pytest.mark.django_db
def test_a_run_that_died_leaves_its_answers_to_the_next_run_after_the_claim(listeners, announce):
    ids = _answers(3)
    now = timezone.now()
    assert services._answers_claim(limit=10, now=now) == [(i, _account(i)) for i in ids]
    # ... and the worker died here: nothing was announced, the rows stay, claimed
    assert announce(now=now + dt.timedelta(seconds=1)) == 0
    assert facts_heard == []
    later = now + dt.timedelta(seconds=services.ANNOUNCE_CLAIM_SECONDS + 1)
    assert announce(now=later) == 3
    assert facts_heard == [ids]
    assert not AnswerToAnnounce.objects.exists()


def _account(entry_id: int) -> int:
    return TimelineEntry.objects.get(pk=entry_id).account_id


@pytest.mark.django_db
def test_the_demo_data_path_writes_nothing_to_announce(listeners, dana):
    invitation = make_invitation(make_campaign(), dana)
    services.response_record(invitation_id=invitation.pk, score=3, announce=False)
    assert not AnswerToAnnounce.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers: PostgreSQL")
def test_two_concurrent_runs_announce_each_answer_exactly_once(listeners):
    """Two runs at once, each holding a claimed batch while the other claims (a barrier in
    the listener): together they announce every answer, none twice. PostgreSQL only: the
    test database of the SQLite run is in memory with a shared cache, where a second writer
    gets "table is locked" at once instead of waiting (embedded mode runs one announcer,
    right after each commit)."""
    ids = _answers(40, accounts=3)
    barrier.append(threading.Barrier(2))
    counts: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            counts.append(services.answers_announce(limit=7))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier[0].abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    announced = [entry_id for call in facts_heard for entry_id in call]
    assert sorted(announced) == ids  # every answer, none twice
    assert len(announced) == len(set(announced))
    assert sum(counts) == 40 and all(counts)  # both runs took a share
    assert not AnswerToAnnounce.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
def test_a_claim_skips_the_rows_another_run_is_claiming(listeners):
    """The claim's subquery skips rows locked by a concurrent claim (SKIP LOCKED) instead of
    waiting for it, and does not take them once that claim commits."""
    ids = _answers(6)
    now = timezone.now()
    other: list[list[tuple[int, int]]] = []
    with transaction.atomic():
        mine = services._answers_claim(limit=3, now=now)  # rows locked until this commits
        thread = threading.Thread(
            target=lambda: (
                other.append(services._answers_claim(limit=10, now=now)),
                connection.close(),
            )
        )
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive()  # it did not wait for this transaction
    assert [e for e, _ in mine] == ids[:3]
    assert [e for e, _ in other[0]] == ids[3:]


@pytest.mark.django_db(transaction=True)
def test_an_unhappy_answer_becomes_a_cta_through_the_real_doors(settings, celery_eager):
    """The public page's POST (CSRF checked), then the beat task: the playbooks' event path
    opens the CTA. Until the batch runs there is none; a second run opens nothing more."""
    settings.TIMELINE_FACT_HOOKS = ["playbooks.tasks.timeline_facts_recorded"]
    settings.SURVEY_ANNOUNCE_INLINE = False  # deployed: the beat task announces
    account = AccountFactory(owner=UserFactory())
    # only this test's playbook: the starter playbooks a migration installs are still there
    # when this is the run's first transactional test, and one of them would open a 2nd CTA
    Playbook.objects.all().delete()
    make_playbook("survey_unhappy", {"kinds": ["nps"]})
    person = StakeholderFactory(account=account, name="Dana Smith")
    invitation = make_invitation(make_campaign("nps"), person)
    client = Client(enforce_csrf_checks=True)
    url = reverse("surveys:respond", args=[invitation.token])
    page = client.get(url)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)[1].decode()
    answer = client.post(url, {"score": "2", "comment": "too slow", "csrfmiddlewaretoken": token})
    assert answer.status_code == 302
    assert not Cta.objects.exists()  # the answer is recorded; the batch announces it

    announce_answers.delay()

    cta = Cta.objects.get()
    assert cta.account == account and "NPS 2 from Dana Smith" in cta.evidence
    announce_answers.delay()
    assert Cta.objects.count() == 1

    # a second person's unhappy answer while that CTA is open: no second CTA (one per
    # account and playbook), but it reaches the CSM on the open CTA, once
    sam = StakeholderFactory(account=account, name="Sam Lee")
    second = make_invitation(make_campaign("nps", name="Pulse"), sam)
    services.response_record(invitation_id=second.pk, score=1, comment="still slow")
    announce_answers.delay()
    announce_answers.delay()
    services.response_record(invitation_id=invitation.pk, score=2, comment="too slow")  # same
    announce_answers.delay()
    assert Cta.objects.count() == 1
    comments = list(cta.comments.values_list("body", flat=True))
    assert len(comments) == 1 and comments[0].startswith(
        "Matched again while open: NPS 1 from Sam Lee"
    )


@pytest.mark.django_db(transaction=True)
def test_embedded_mode_announces_right_after_the_commit(listeners, settings, celery_eager):
    """No beat in embedded mode (tasks run in-process): the request announces its answer."""
    settings.SURVEY_ANNOUNCE_INLINE = None  # follow Celery: eager here
    invitation = make_invitation(make_campaign(), StakeholderFactory())
    client = Client()
    assert client.post(reverse("surveys:respond", args=[invitation.token]), {"score": "1"})
    fact = TimelineEntry.objects.get(kind="survey_answer")
    assert facts_heard == [[fact.pk]] and accounts_heard == [{fact.account_id}]
    assert not AnswerToAnnounce.objects.exists()


def test_beat_runs_the_announcer_every_few_seconds():
    from config.celery import app as celery_app

    entry = celery_app.conf.beat_schedule["announce-survey-answers"]
    assert entry["task"] == announce_answers.name
    assert entry["schedule"] <= 10  # a CTA within 60 s, health within 60 s (+30 s debounce)
    assert announce_answers.name in celery_app.tasks
