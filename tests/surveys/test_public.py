"""Through the real doors: the campaign's email in Django's outbox, its links, the page (GET
writes nothing), the POST with CSRF, the thank-you page, the timeline fact and the hook the
playbooks listen on; bad input (unknown, expired, out of range, no CSRF, too many requests)."""

from __future__ import annotations

import datetime as dt
import re
import socket

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import TimelineEntry
from outbox.models import Message
from surveys import services
from surveys.models import Campaign, Invitation, OptOut, Response
from surveys.tasks import send_due_campaigns

from .conftest import make_campaign, make_invitation

FACTS: list[list[int]] = []
REDIS_CACHE = django_settings.CACHES["default"]["BACKEND"].startswith("django_redis")


def record_facts(ids):  # a TIMELINE_FACT_HOOKS listener, as playbooks' task is
    FACTS.append(list(ids))


@pytest.fixture
def hooks(settings):
    FACTS.clear()
    settings.TIMELINE_FACT_HOOKS = ["tests.surveys.test_public.record_facts"]
    return FACTS


@pytest.fixture
def csrf_client():
    return Client(enforce_csrf_checks=True)


def _links(body: str) -> list[str]:
    return re.findall(r'href="(http[^"]+)"', body)


def _path(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def _csrf(response) -> str:
    return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)[1].decode()


@pytest.mark.django_db(transaction=True)
def test_email_link_page_post_timeline_and_hook(csrf_client, dana, hooks, settings, celery_eager):
    settings.SITE_URL = "https://cs.example.com"
    campaign = make_campaign("nps", next_run_at=timezone.now() - dt.timedelta(minutes=1))

    send_due_campaigns.delay()

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["dana@acme.example"]
    html = email.alternatives[0][0]
    links = _links(html)
    score_links = [u for u in links if "?score=" in u]
    # the first question is in the email: 11 links, one per score, score preselected
    assert [u.rsplit("=", 1)[1] for u in score_links] == [str(s) for s in range(11)]
    assert all(u.startswith("https://cs.example.com/s/") for u in score_links)
    assert "?score=3" in email.body and "/unsubscribe/" in email.body
    invitation = Invitation.objects.get()
    assert len(invitation.token) >= 43 and invitation.sent_at is not None  # 256 bits
    assert Message.objects.get().key == f"survey-invite:{invitation.pk}"

    # a mail scanner follows every link: nothing is written
    for url in links:
        assert csrf_client.get(_path(url)).status_code == 200
    assert Response.objects.count() == 0 and OptOut.objects.count() == 0
    assert not TimelineEntry.objects.filter(kind="survey_answer").exists()

    page = csrf_client.get(_path(score_links[3]))
    body = page.content.decode()
    assert '<html lang="en">' in body
    assert 'value="3" required checked' in body  # preselected
    assert (
        "<fieldset" in body
        and '<legend><h1 class="public-question" id="survey-question">How likely' in body
    )
    assert 'for="comment"' in body and "What is the main reason" in body
    assert "Dana" not in body and "dana@" not in body  # nothing about the person
    assert "<script" not in body

    answer = csrf_client.post(
        _path(score_links[3]),
        {"score": "3", "comment": "Support was slow", "csrfmiddlewaretoken": _csrf(page)},
    )
    assert answer.status_code == 302
    assert answer["Location"] == reverse("surveys:thanks", args=[invitation.token])
    thanks = csrf_client.get(answer["Location"])
    assert thanks.status_code == 200 and b"Thank you" in thanks.content

    response = Response.objects.get()
    assert (response.score, response.comment, response.is_current) == (3, "Support was slow", True)
    fact = TimelineEntry.objects.get(kind="survey_answer")
    assert fact.account_id == dana.account_id
    assert fact.key == f"survey-response:{response.pk}"
    assert fact.title == "NPS 3 from Dana Smith"
    assert fact.occurred_at == response.answered_at
    assert fact.data == {
        "response_id": response.pk,
        "survey_kind": "nps",
        "score": 3,
        "unhappy": True,
        "stakeholder_id": dana.pk,
        "comment": "Support was slow",
    }
    assert hooks == [[fact.pk]]  # the playbooks' hook heard about it after commit
    invitation.refresh_from_db()
    assert invitation.responded_at == response.answered_at
    assert campaign.responses.count() == 1


@pytest.mark.django_db
def test_changing_the_answer_keeps_history_and_one_current(
    client, dana, hooks, django_capture_on_commit_callbacks, settings
):
    settings.SURVEY_ANNOUNCE_INLINE = False  # deployed: the beat task announces
    invitation = make_invitation(make_campaign("csat"), dana)
    url = reverse("surveys:respond", args=[invitation.token])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"score": "2", "comment": "meh"}).status_code == 302
        assert client.post(url, {"score": "4", "comment": "better now"}).status_code == 302
    rows = list(Response.objects.order_by("id").values_list("score", "is_current"))
    assert rows == [(2, False), (4, True)]
    facts = TimelineEntry.objects.filter(kind="survey_answer").order_by("id")
    assert [f.data["score"] for f in facts] == [2, 4]
    assert [f.data["unhappy"] for f in facts] == [True, False]  # CSAT <= 2 is unhappy
    assert hooks == []  # not yet: the next batch tells the listeners
    with django_capture_on_commit_callbacks(execute=True):
        assert services.answers_announce() == 2
    assert hooks == [[facts[0].pk, facts[1].pk]]  # both answers, one call
    # the page now shows the current answer to change
    page = client.get(url).content.decode()
    assert 'value="4" required checked' in page and "better now" in page
    assert "You already answered" in page


@pytest.mark.django_db
def test_unknown_and_tampered_tokens_get_404_and_write_nothing(client, dana):
    invitation = make_invitation(make_campaign(), dana)
    tampered = invitation.token[:-1] + ("A" if invitation.token[-1] != "A" else "B")
    for token in ("nope", tampered, "x" * 43):
        for method in (client.get, client.post):
            r = method(f"/s/{token}/", {"score": "9"})
            assert r.status_code == 404, (token, method)
            assert b"Survey not found" in r.content
    assert client.get("/s/../../etc/").status_code == 404
    assert Response.objects.count() == 0


@pytest.mark.django_db
def test_expired_invitation_and_closed_campaign_get_410(client, dana):
    past = timezone.now() - dt.timedelta(seconds=1)
    expired = make_invitation(make_campaign(), dana, expires_at=past)
    closed_campaign = make_campaign(status=Campaign.Status.CLOSED)
    closed = make_invitation(closed_campaign)
    past_close = make_invitation(make_campaign(closes_at=past))
    for invitation in (expired, closed, past_close):
        url = reverse("surveys:respond", args=[invitation.token])
        assert client.get(url + "?score=9").status_code == 410
        r = client.post(url, {"score": "9"})
        assert r.status_code == 410 and b"This survey has closed" in r.content
    assert Response.objects.count() == 0
    # unsubscribing still works after the close
    r = client.post(reverse("surveys:unsubscribe", args=[expired.token]))
    assert r.status_code == 200 and OptOut.objects.filter(email="dana@acme.example").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("score", ["11", "-1", "", "abc", "7.5"])
def test_score_out_of_range_is_rejected_with_a_message(client, dana, score):
    invitation = make_invitation(make_campaign("nps"), dana)
    r = client.post(reverse("surveys:respond", args=[invitation.token]), {"score": score})
    assert r.status_code == 400
    assert b'role="alert"' in r.content
    assert b"from 0 to 10" in r.content or b"Choose a score" in r.content
    assert Response.objects.count() == 0


@pytest.mark.django_db
def test_missing_csrf_token_is_rejected_with_a_message(csrf_client, dana):
    invitation = make_invitation(make_campaign(), dana)
    r = csrf_client.post(reverse("surveys:respond", args=[invitation.token]), {"score": "9"})
    assert r.status_code == 403
    assert b"Your answer was not sent" in r.content
    assert Response.objects.count() == 0


@pytest.mark.django_db
def test_rate_limited_per_token_and_per_ip(client, dana, settings):
    settings.SURVEY_RATE_PER_TOKEN = 3
    settings.SURVEY_RATE_PER_IP = 5
    one = make_invitation(make_campaign(), dana)
    other = make_invitation(one.campaign)
    url = reverse("surveys:respond", args=[one.token])
    assert [client.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]
    r = client.post(url, {"score": "9"})
    assert r.status_code == 429 and r["Retry-After"] == "60" and b"Too many attempts" in r.content
    assert Response.objects.count() == 0
    # the same IP on another token: the IP's budget (5) runs out at its 6th request
    other_url = reverse("surveys:respond", args=[other.token])
    assert client.get(other_url).status_code == 429
    # another IP still gets through on the other token
    assert client.get(other_url, REMOTE_ADDR="10.0.0.9").status_code == 200


@pytest.mark.django_db
def test_public_pages_need_no_sign_in_and_leak_nothing(client, dana, settings):
    settings.SURVEY_SENDER_NAME = "Northwind"
    invitation = make_invitation(
        make_campaign(strings={"en": {"unsubscribe_link": "{company}: no more surveys"}}), dana
    )
    services.response_record(invitation_id=invitation.pk, score=9)  # the thanks page's case
    for name in ("respond", "thanks", "unsubscribe"):
        r = client.get(reverse(f"surveys:{name}", args=[invitation.token]))
        assert r.status_code == 200, name
        assert r["Referrer-Policy"] == "same-origin"
        body = r.content.decode()
        assert '<p class="public-company">Northwind</p>' in body, name  # who asks
        if name != "unsubscribe":  # the account's name only where a string names {company}
            assert "Acme Corp: no more surveys" in body, name
        for secret in (
            dana.email.lower(),
            dana.name,
            dana.account.external_id,
            "Enterprise",
            "Sign out",
        ):
            assert secret not in body, (name, secret)


@pytest.mark.django_db
def test_get_unsubscribe_asks_post_records(client, dana):
    invitation = make_invitation(make_campaign(), dana)
    url = reverse("surveys:unsubscribe", args=[invitation.token])
    assert b"Stop survey emails" in client.get(url).content
    assert not OptOut.objects.exists()
    client.post(url)
    client.post(url)  # twice: one row
    assert list(OptOut.objects.values_list("email", flat=True)) == ["dana@acme.example"]


@pytest.mark.django_db
def test_unsubscribe_takes_a_one_click_post_or_the_page_form_without_a_csrf_token(
    csrf_client, dana
):
    invitation = make_invitation(make_campaign(), dana)
    url = reverse("surveys:unsubscribe", args=[invitation.token])
    page = csrf_client.get(url)
    assert page.status_code == 200 and not OptOut.objects.exists()  # GET never writes
    assert "csrfmiddlewaretoken" not in page.content.decode()
    # RFC 8058: what a mail program's button sends, with no cookie and no token
    r = csrf_client.post(
        url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert r.status_code == 200 and b"You will not get survey emails" in r.content
    assert list(OptOut.objects.values_list("email", flat=True)) == ["dana@acme.example"]
    OptOut.objects.all().delete()
    assert csrf_client.post(url).status_code == 200  # the page's own form
    assert OptOut.objects.count() == 1


@pytest.mark.django_db
def test_page_strings_and_language_from_the_survey(client, dana):
    campaign = make_campaign(
        "ces",
        language="de",
        strings={"de": {"submit": "Antwort senden", "intro": "{company} fragt."}},  # still valid
    )
    invitation = make_invitation(campaign, dana)
    body = client.get(reverse("surveys:respond", args=[invitation.token])).content.decode()
    assert '<html lang="de">' in body
    assert "Antwort senden" in body and "Acme Corp fragt." in body
    assert body.count('name="score"') == 7  # CES 1..7


@pytest.mark.django_db
def test_response_record_refuses_a_closed_invitation(dana):
    invitation = make_invitation(make_campaign(), dana, expires_at=timezone.now())
    with pytest.raises(services.InvitationClosed):
        services.response_record(invitation_id=invitation.pk, score=9)
    assert Response.objects.count() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rate_limiter_fails_open_when_redis_is_down(settings):
    from accounts import ratelimit

    settings.CACHES = {  # a django-redis cache where nobody listens: what an outage looks like
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_free_port()}/0",
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 1},
        }
    }
    assert ratelimit.allow("x", limit=1, window=60) and ratelimit.allow("x", limit=1, window=60)
    assert ratelimit.allow_all([("x", 0, 60), ("y", 0, 60)])


def test_rate_limiter_fails_open_when_another_cache_is_down(monkeypatch, settings):
    from django.core.cache import caches

    from accounts import ratelimit

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache = caches["default"]  # this one, not the proxy: the settings are restored first
    monkeypatch.setattr(cache, "add", lambda *a, **k: None)  # what a cache that ignores
    monkeypatch.setattr(cache, "incr", lambda *a, **k: None)  # its errors answers
    assert ratelimit.allow("x", limit=1, window=60) and ratelimit.allow("x", limit=1, window=60)


def test_every_counter_counts_the_hit_even_when_another_refuses():
    from accounts import ratelimit

    checks = [("tight", 1, 60), ("loose", 3, 60)]
    # tight: 1, 2 (over), 3; loose: 1, 2, 3, then 4 is over on its own
    assert [ratelimit.allow_all(checks, now=60.0) for _ in range(3)] == [True, False, False]
    assert not ratelimit.allow("loose", limit=3, window=60, now=60.0)


def test_several_requests_counted_at_once_see_each_others_hits():
    from accounts import ratelimit

    ip = ("s-ip:10.0.0.1", 2, 60)
    requests = [[ip, ("s-tok:a", 5, 60)], [ip, ("s-tok:b", 5, 60)], [ip, ("s-tok:a", 5, 60)]]
    # the shared IP counter: 1, 2, then 3 is over its limit of 2; s-tok:a: 1, 2 (allowed)
    assert ratelimit.allow_each(requests, now=60.0) == [True, True, False]
    # every hit was counted: the IP is at 3, so the next request is refused too
    assert not ratelimit.allow_all([ip], now=60.0)
    assert ratelimit.allow_all([("s-tok:a", 3, 60)], now=60.0)  # a's third hit: 3 ≤ 3


@pytest.mark.skipif(not REDIS_CACHE, reason="the Redis cache (REDIS_URL)")
def test_redis_counters_carry_their_expiry():
    from django_redis import get_redis_connection

    from accounts import ratelimit

    assert ratelimit.allow_all([("ttl-a", 5, 60), ("ttl-b", 5, 3600)], now=7200.0)
    client = get_redis_connection("default")
    ttls = sorted(client.ttl(k) for k in client.keys("*ratelimit:ttl-*"))
    assert 0 < ttls[0] <= 65 and 60 < ttls[1] <= 3605  # window + 5 s: no counter lives forever


def test_fixed_window_counts_per_minute():
    from accounts import ratelimit

    assert [ratelimit.allow("w", limit=2, window=60, now=60.0) for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert ratelimit.allow("w", limit=2, window=60, now=120.0)  # the next minute starts over


@pytest.mark.django_db
def test_the_same_answer_again_writes_nothing(client, dana):
    """A reload or a second click posts the same answer: no second history row, no second
    timeline fact; a changed comment is a changed answer."""
    invitation = make_invitation(make_campaign(), dana)
    url = reverse("surveys:respond", args=[invitation.token])
    for _ in range(3):
        assert client.post(url, {"score": "4", "comment": "slow"}).status_code == 302
    assert list(Response.objects.values_list("score", "comment", "is_current")) == [
        (4, "slow", True)
    ]
    assert client.post(url, {"score": "4", "comment": "slow, still"}).status_code == 302
    rows = list(Response.objects.order_by("id").values_list("comment", "is_current"))
    assert rows == [("slow", False), ("slow, still", True)]
    assert TimelineEntry.objects.filter(kind="survey_answer").count() == 2


def test_an_answer_costs_a_fixed_handful_of_statements(
    client, dana, hooks, django_assert_num_queries, django_capture_on_commit_callbacks, settings
):
    """The hot path: one locking read, then on PostgreSQL one statement writing the response,
    the invitation's first-answer time, the timeline fact and the row to announce; a changed
    answer adds the demotion. SAVEPOINT/RELEASE are the test's transaction (BEGIN/COMMIT
    when deployed). The listeners hear of both answers from the next batch."""
    from django.db import connection

    settings.SURVEY_ANNOUNCE_INLINE = False  # deployed: the beat task announces
    invitation = make_invitation(make_campaign(), dana)
    url = reverse("surveys:respond", args=[invitation.token])
    # SAVEPOINT, SELECT … FOR UPDATE, write(s), RELEASE: PostgreSQL one WITH … INSERT; SQLite
    # the response INSERT, the responded_at UPDATE, the fact INSERT and (since the answers
    # are announced in batches) the INSERT of the row to announce: 6 -> 7
    first, changed = (4, 5) if connection.vendor == "postgresql" else (7, 7)
    with django_capture_on_commit_callbacks(execute=True):
        with django_assert_num_queries(first):
            assert client.post(url, {"score": "4", "comment": "slow"}).status_code == 302
        with django_assert_num_queries(changed):  # + the UPDATE demoting the first answer
            assert client.post(url, {"score": "9"}).status_code == 302
    rows = list(Response.objects.order_by("id").values_list("score", "comment", "is_current"))
    assert rows == [(4, "slow", False), (9, "", True)]
    facts = TimelineEntry.objects.filter(kind="survey_answer").order_by("id")
    assert [f.key for f in facts] == [f"survey-response:{pk}" for pk in
                                      Response.objects.order_by("id").values_list("pk", flat=True)]  # fmt: skip
    assert hooks == []
    with django_capture_on_commit_callbacks(execute=True):
        services.answers_announce()
    assert hooks == [[facts[0].pk, facts[1].pk]]


@pytest.mark.django_db
def test_the_recorded_fact_is_the_one_the_model_builds(dana):
    """Whichever statement wrote it (one WITH … INSERT on PostgreSQL), the fact equals what
    ``_fact`` builds from the returned response, field by field."""
    invitation = make_invitation(make_campaign("ces"), dana)
    response = services.response_record(invitation_id=invitation.pk, score="2", comment=" x ")
    stored = Response.objects.get()
    assert (response.pk, response.score, response.comment) == (stored.pk, 2, "x")
    expected = services._fact(stored, "Dana Smith")
    fact = TimelineEntry.objects.get(kind="survey_answer")
    fields = ("account_id", "occurred_at", "kind", "key", "title", "detail", "data")
    assert [getattr(fact, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert fact.data["unhappy"] is True  # CES 2 of 7 ("very difficult" is 1)
    invitation.refresh_from_db()
    assert invitation.responded_at == stored.answered_at


@pytest.mark.django_db
def test_the_thanks_page_of_an_unanswered_invitation_goes_to_the_question(client, dana):
    """It must not say "your answer was recorded" when there is none."""
    invitation = make_invitation(make_campaign(), dana)
    r = client.get(reverse("surveys:thanks", args=[invitation.token]))
    assert r.status_code == 302
    assert r["Location"] == reverse("surveys:respond", args=[invitation.token])
    assert "no-cache" in r["Cache-Control"]
    assert Response.objects.count() == 0


@pytest.mark.django_db
def test_the_app_and_the_public_survey_pages_name_their_icon(client, dana):
    """Browsers asked for /favicon.ico on every page and got a 404."""
    from django.contrib.staticfiles import finders

    assert finders.find("img/favicon.svg")
    invitation = make_invitation(make_campaign(), dana)
    for url in (reverse("login"), reverse("surveys:respond", args=[invitation.token])):
        body = client.get(url).content.decode()
        assert '<link rel="icon" href="/static/img/favicon' in body, url
