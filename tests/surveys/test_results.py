"""Results: NPS, CSAT, CES, response rate and follow-up time by hand, through the selectors,
the KPI engine, the health inputs, the results page (per persona) and the CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io

import pytest
from django.urls import reverse

from accounts.models import Account, Activity
from metrics.kpis import kpi_report
from metrics.kpis.health_inputs import account_measures
from surveys import selectors, services
from surveys.models import Response
from tests.factories import AccountFactory, StakeholderFactory

from .conftest import NOW, make_campaign, make_invitation

pytestmark = pytest.mark.django_db
MAR, APR, MAY = dt.date(2026, 3, 1), dt.date(2026, 4, 1), dt.date(2026, 5, 1)


def h(hours: float) -> dt.datetime:
    return NOW + dt.timedelta(hours=hours)


def answer(invitation, score, hours, comment=""):
    return services.response_record(
        invitation_id=invitation.pk, score=score, comment=comment, now=h(hours)
    )


@pytest.fixture
def book(csm, admin_user):
    """Account A (Enterprise, csm's) and B (SMB, the admin's), answers in March 2026."""
    a = AccountFactory(name="Alpha", segment="Enterprise", owner=csm)
    b = AccountFactory(name="Beta", segment="SMB", owner=admin_user)
    p1, p2, p3 = (StakeholderFactory(account=a, name=n) for n in ("P1", "P2", "P3"))
    p4 = StakeholderFactory(account=b, name="P4")
    p5 = StakeholderFactory(account=b, name="P5")
    nps = make_campaign("nps", name="NPS")
    inv = {
        "p1": make_invitation(nps, p1, now=NOW),
        "p1r2": make_invitation(nps, p1, now=NOW, round="2"),
        "p2": make_invitation(nps, p2, now=NOW),
        "p3": make_invitation(nps, p3, now=NOW),
        "p4": make_invitation(nps, p4, now=NOW),
        "p5": make_invitation(nps, p5, now=NOW),  # never answers
    }
    answer(inv["p1"], 10, 1)
    answer(inv["p1r2"], 7, 50)  # p1's later answer to the same campaign: only this counts
    answer(inv["p2"], 3, 2, "too slow")
    answer(inv["p2"], 9, 3, "fixed now")  # changed: only the latest of the invitation
    answer(inv["p3"], 6, 4, "missing exports")
    answer(inv["p4"], 0, 5, "=cmd|' /C calc'!A0")
    csat = make_campaign("csat", name="CSAT")
    answer(make_invitation(csat, p1, now=NOW), 5, 6)
    answer(make_invitation(csat, p4, now=NOW), 2, 7, "billing confusion")
    for score, hours in ((7, 8), (4, 9)):  # imported CES, no campaign: each counts
        Response.objects.create(
            account=a, kind="ces", score=score, answered_at=h(hours), source="import",
            import_key=f"ces-{score}",
        )  # fmt: skip
    # the CSM calls Alpha 2 hours after P3's detractor answer (hour 4)
    Activity.objects.create(account=a, kind="call", occurred_at=h(6), subject="call")
    # an April answer is outside March
    april = make_invitation(make_campaign("nps", name="April"), p3, now=NOW, expires_at=h(24 * 60))
    answer(april, 10, 24 * 31)
    return {"a": a, "b": b, "nps": nps, "csat": csat}


def test_figures_by_hand_for_the_book(book):
    voc = selectors.voice_of_customer(Account.objects.all(), start=MAR, end=APR)
    # NPS counted: p1 7 (passive), p2 9 (promoter), p3 6 (detractor), p4 0 (detractor)
    # = 100 * (1 - 2) / 4 = -25
    nps = voc["kinds"]["nps"]
    assert (nps.responses, nps.value) == (4, -25)
    # CSAT: 5 and 2 -> 1 of 2 satisfied = 50 %
    assert voc["kinds"]["csat"].value == 50
    # CES imported 7 and 4: mean 5.5, >= 5: 1 of 2 = 50 %
    assert (voc["kinds"]["ces"].value, voc["kinds"]["ces"].easy_pct) == (5.5, 50)
    # invitations sent in March: NPS 6 + CSAT 2 + April campaign's 1 (sent in March too) = 9;
    # answered before April: all but p5 and the April answer = 7 -> 77.77 %
    assert voc["invitations"]["delivered"] == 9 and voc["invitations"]["responded"] == 7
    assert voc["invitations"]["rate"] == pytest.approx(700 / 9)
    # unhappy: p3 NPS 6 (followed up after 2 h), p4 NPS 0 and CSAT 2 (Beta: no action)
    assert voc["follow_up"] == {"median_hours": 2.0, "followed_up": 1, "waiting": 2}


def test_imported_unhappy_answers_wait_for_no_follow_up(book, client, admin_user):
    """An NPS 2 imported from another tool in March counts in the NPS, but it was followed
    up (or not) in that tool: it does not wait here, the waiting count stays 2."""
    imported = Response.objects.create(
        account=book["b"], kind="nps", score=2, answered_at=h(10), source="import",
        import_key="nps-2", comment="old tool",
    )  # fmt: skip
    voc = selectors.voice_of_customer(Account.objects.all(), start=MAR, end=APR)
    # NPS: the 4 answers above and the imported 2 (a detractor) = 100 * (1 - 3) / 5 = -40
    assert voc["kinds"]["nps"].value == -40
    assert voc["follow_up"] == {"median_hours": 2.0, "followed_up": 1, "waiting": 2}
    # the comments list says so too: "imported", not "none yet"
    client.force_login(admin_user)
    page = client.get(reverse("surveys:results"), {"start": "2026-03-01", "end": "2026-04-01"})
    body = page.content.decode()
    row = body[body.index(f'id="response-{imported.pk}"') :].split("</tr>")[0]
    assert "imported" in row and "none yet" not in row


def test_per_campaign_and_per_account(book):
    by_campaign = selectors.voice_of_customer(campaign_id=book["nps"].pk, start=MAR, end=APR)
    # NPS campaign only: 6 invitations, 5 answered = 83.33 %; NPS -25 as above
    assert by_campaign["kinds"]["nps"].value == -25
    assert by_campaign["invitations"]["rate"] == pytest.approx(500 / 6)
    assert by_campaign["kinds"]["csat"].responses == 0
    alpha = selectors.voice_of_customer(Account.objects.filter(pk=book["a"].pk), start=MAR, end=APR)
    # Alpha: 7 passive, 9 promoter, 6 detractor -> 100 * (1 - 1) / 3 = 0
    assert alpha["kinds"]["nps"].value == 0
    assert alpha["kinds"]["csat"].value == 100  # one 5
    assert alpha["follow_up"]["waiting"] == 0


def test_kpi_engine_reports_the_same_figures(book):
    voice = kpi_report(start=MAR, end=APR)["voice_of_customer"]
    # the same figures, as the report's decimal strings
    assert voice["nps"]["value"] == "-25"
    assert voice["nps"]["inputs"] == {
        "responses": 4,
        "promoters": 1,
        "passives": 1,
        "detractors": 2,
    }
    assert voice["csat"]["value"] == "50" and voice["ces"]["value"] == "5.5"
    assert voice["response_rate"]["value"] == "77.77777777777777777777777778"  # 700 / 9
    assert voice["detractor_follow_up_hours"]["value"] == 2.0
    # April: only the April answer (10): NPS 100; nothing sent in April
    april = kpi_report(start=APR, end=MAY)["voice_of_customer"]
    assert april["nps"]["value"] == "100" and april["response_rate"]["value"] is None
    assert april["csat"]["value"] is None  # no data is not zero


def test_kpi_engine_gives_survey_ratios_as_exact_decimals():
    """metrics.md: ratios are percentages with full precision, as decimal strings like every
    other KPI of the report; thirds show whether they went through a binary float."""
    a = AccountFactory()
    people = [StakeholderFactory(account=a, name=f"P{i}") for i in range(3)]
    nps = make_campaign("nps", name="NPS")
    invitations = [make_invitation(nps, p, now=NOW) for p in people]
    answer(invitations[0], 10, 1)  # one of the three answers
    for kind, scores in (("nps", (9, 0)), ("csat", (5, 4, 1)), ("ces", (7, 5, 5))):
        for i, score in enumerate(scores):
            Response.objects.create(
                account=a, kind=kind, score=score, answered_at=h(2 + i), source="import",
                import_key=f"{kind}-{i}",
            )  # fmt: skip
    voice = kpi_report(start=MAR, end=APR)["voice_of_customer"]
    # NPS 10, 9, 0: 2 promoters, 1 detractor of 3 -> 100 * (2 - 1) / 3 = 33.33…
    assert voice["nps"]["value"] == "33.33333333333333333333333333"
    # CSAT 5, 4, 1: 2 of 3 are 4 or 5 -> 66.66…7
    assert voice["csat"]["value"] == "66.66666666666666666666666667"
    # CES 7, 5, 5: mean 17 / 3 = 5.66…7; all three are 5 or more -> 100 %
    assert voice["ces"]["value"] == "5.666666666666666666666666667"
    assert voice["ces"]["inputs"]["easy_pct"] == "100"
    # 3 NPS invitations sent in March, 1 answered -> 100 / 3 = 33.33…
    assert voice["response_rate"]["value"] == "33.33333333333333333333333333"


def test_health_inputs_carry_each_accounts_sentiment(book):
    measures = account_measures(Account.objects.all(), as_of=dt.date(2026, 3, 31))
    a, b = measures[book["a"].pk], measures[book["b"].pk]
    assert (a["nps"], a["csat"], a["ces"], a["nps_responses"]) == (0, 100, 5.5, 3)
    # Beta: one detractor (0) -> -100; CSAT 2 -> 0 %
    assert (b["nps"], b["csat"]) == (-100, 0) and "ces" not in b


def test_results_page_shows_a_csm_their_accounts_only(
    client, csm, book, django_assert_max_num_queries
):
    client.force_login(csm)
    with django_assert_max_num_queries(14):
        r = client.get(reverse("surveys:results"), {"start": "2026-03-01", "end": "2026-04-01"})
    assert r.status_code == 200
    voc = r.context["voc"]
    # Alpha's invitations sent in March: NPS p1 (2 rounds), p2, p3; CSAT p1; April's p3 = 6
    assert voc["kinds"]["nps"].value == 0 and voc["invitations"]["delivered"] == 6
    body = r.content.decode()
    assert "missing exports" in body and "Alpha" in body
    assert "billing confusion" not in body and "Beta" not in body
    assert 'class="dist-bar"' in body


def test_a_follow_up_within_the_hour_reads_in_minutes(client, admin_user, book):
    # the CSM's call on Alpha moves to a quarter of an hour after P3's answer (hour 4):
    # median 0.25 h = 15 min; "0.2 h" would hide it
    Activity.objects.filter(account=book["a"]).update(occurred_at=h(4.25))
    client.force_login(admin_user)
    r = client.get(reverse("surveys:results"), {"start": "2026-03-01", "end": "2026-04-01"})
    assert r.context["voc"]["follow_up"]["median_hours"] == 0.25
    assert "<dd>15 min</dd>" in r.content.decode()


def test_results_query_count_does_not_grow(client, admin_user, book, django_assert_max_num_queries):
    client.force_login(admin_user)
    with django_assert_max_num_queries(14):
        client.get(reverse("surveys:results"))
    for _ in range(5):
        answer(
            make_invitation(book["nps"], StakeholderFactory(account=book["b"]), now=NOW),
            1,
            10,
            "more",
        )
    with django_assert_max_num_queries(14):
        r = client.get(reverse("surveys:results"), {"group": "unhappy"})
    # unhappy with a comment: p3's 6, p4's 0, p4's CSAT 2, and the 5 new ones (p2's 3 was changed)
    assert r.content.decode().count('id="response-') == 8


def test_outsider_gets_403(client, outsider, book):
    client.force_login(outsider)
    for name in (
        "surveys:results",
        "surveys:results-csv",
        "surveys:campaign-list",
        "surveys:campaign-new",
    ):
        assert client.get(reverse(name)).status_code == 403, name


def test_csv_export_of_the_csms_answers(client, csm, book):
    client.force_login(csm)
    r = client.get(reverse("surveys:results-csv"), {"start": "2026-03-01", "end": "2026-04-01"})
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode("utf-8-sig"))))
    assert r["Content-Type"].startswith("text/csv")
    assert sorted((row["Kind"], row["Score"]) for row in rows) == [
        ("CES", "4"),
        ("CES", "7"),
        ("CSAT", "5"),
        ("NPS", "6"),
        ("NPS", "7"),
        ("NPS", "9"),
    ]
    assert {row["Account"] for row in rows} == {"Alpha"}
    # the last day covered is the one before the (exclusive) end
    assert r["Content-Disposition"] == (
        'attachment; filename="survey-responses-2026-03-01-to-2026-03-31.csv"'
    )


def test_the_csv_holds_the_answers_behind_the_pages_nps(client, admin_user, book):
    """The page's NPS for March, and the same figure worked out from the file's rows."""
    client.force_login(admin_user)
    query = {"start": "2026-03-01", "end": "2026-04-01"}
    page = client.get(reverse("surveys:results"), query)
    nps = page.context["voc"]["kinds"]["nps"]
    assert (nps.responses, nps.value) == (4, -25)
    r = client.get(reverse("surveys:results-csv"), query)
    body = b"".join(r.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 with its BOM, for Excel
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    scores = [int(row["Score"]) for row in rows if row["Kind"] == "NPS"]
    # the file's NPS answers: 7, 9, 6, 0 -> promoters (9-10) 1, detractors (0-6) 2, of 4:
    # 100 * (1 - 2) / 4 = -25, the page's figure
    assert sorted(scores) == [0, 6, 7, 9]
    promoters = sum(s >= 9 for s in scores)
    detractors = sum(s <= 6 for s in scores)
    assert 100 * (promoters - detractors) / len(scores) == nps.value
    # days as ISO days, moments in UTC as spreadsheets read them; the unhappy flag in words
    # the earliest that counts: p2's 9 at NOW + 3 h (p1's 10 at + 1 h and p2's 3 at + 2 h
    # were replaced), NOW being 2 Mar 2026 09:00 UTC
    first = min(rows, key=lambda row: row["Answered at (UTC)"])
    assert (first["Answered on"], first["Answered at (UTC)"]) == (
        "2026-03-02",
        "2026-03-02 12:00:00",
    )
    assert {row["Unhappy"] for row in rows} == {"yes", "no"}


def test_csv_export_follows_the_kind_and_who_filters(client, admin_user, book):
    client.force_login(admin_user)
    query = {"start": "2026-03-01", "end": "2026-04-01", "kind": "nps", "group": "unhappy"}
    r = client.get(reverse("surveys:results-csv"), query)
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode("utf-8-sig"))))
    # the unhappy NPS answers that count: p3's 6 and p4's 0 (with or without a comment)
    assert sorted((row["Account"], row["Score"]) for row in rows) == [("Alpha", "6"), ("Beta", "0")]
    assert r["Content-Disposition"] == (
        'attachment; filename="survey-responses-nps-unhappy-2026-03-01-to-2026-03-31.csv"'
    )
    # and the page's export link carries them
    page = client.get(reverse("surveys:results"), query).content.decode()
    assert "results.csv?start=2026-03-01&amp;end=2026-04-01&amp;kind=nps&amp;group=unhappy" in page


def test_one_accounts_results_say_so(client, admin_user, book):
    client.force_login(admin_user)
    r = client.get(reverse("surveys:results"), {"account": book["a"].pk})
    body = r.content.decode()
    assert "<h1>Survey results: Alpha</h1>" in body
    assert f'href="/accounts/{book["a"].pk}/"' in body
    assert r.context["voc"]["kinds"]["csat"].value == 100  # Alpha's one CSAT 5


def test_a_segment_is_chosen_from_those_that_exist(client, admin_user, book):
    client.force_login(admin_user)
    page = client.get(reverse("surveys:results")).content.decode()
    assert '<option value="Enterprise">Enterprise</option>' in page
    r = client.get(reverse("surveys:results"), {"segment": "enterprise"})
    assert r.status_code == 400
    assert "No segment is called “enterprise”; the segments are: Enterprise, SMB." in (
        html.unescape(r.content.decode())
    )
    r = client.get(reverse("surveys:results"), {"segment": "SMB", "start": "2026-03-01"})
    assert r.context["voc"]["kinds"]["csat"].value == 0  # Beta's CSAT 2


def test_a_csm_is_offered_and_told_only_the_segments_of_their_book(client, csm, book):
    client.force_login(csm)  # Alpha (Enterprise) is theirs; Beta (SMB) is the admin's
    page = client.get(reverse("surveys:results")).content.decode()
    assert '<option value="Enterprise">Enterprise</option>' in page
    assert "SMB" not in page
    for url in (reverse("surveys:results"), reverse("surveys:results-csv")):
        r = client.get(url, {"segment": "SMB"})  # another book's segment: as unknown
        assert r.status_code == 400
        text = html.unescape(r.content.decode())
        assert "No segment is called “SMB”; the segments are: Enterprise." in text
        assert "Beta" not in text


def test_csv_export_neutralises_formulas(client, admin_user, book):
    client.force_login(admin_user)
    r = client.get(reverse("surveys:results-csv"))
    text = b"".join(r.streaming_content).decode("utf-8-sig")
    assert "'=cmd|" in text and ",=cmd" not in text


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            {"campaign": "NPS", "start": "2026-13-01"},
            "start",
            "2026-13-01 is not a valid date (YYYY-MM-DD): month must be in 1..12",
        ),
        (
            {"end": "2026-1-5"},
            "end",
            "“2026-1-5” is not a date: use YYYY-MM-DD, e.g. 2026-03-01",
        ),
        ({"start": "2026-04-01", "end": "2026-03-01"}, "end", "The end must be after the start."),
        ({"campaign": "999999"}, "campaign", "Select a valid choice."),
    ],
    ids=["bad-date", "not-yyyy-mm-dd", "end-before-start", "unknown-campaign"],
)
def test_a_bad_filter_shows_its_error_and_no_figures_for_a_wider_scope(
    client, admin_user, book, query, field, message
):
    """One bad filter must not drop the others and show every answer as if it were the
    filtered scope: the page says what is wrong and where, the export refuses."""
    client.force_login(admin_user)
    if query.get("campaign") == "NPS":
        query = {**query, "campaign": str(book["nps"].pk)}
    r = client.get(reverse("surveys:results"), query)
    assert r.status_code == 400
    body = r.content.decode()
    assert f'id="id_{field}_error"' in body and message in body
    assert "No figures until the filters are fixed." in body
    assert "voc" not in r.context and 'id="response-' not in body and "Export CSV" not in body

    r = client.get(reverse("surveys:results-csv"), query)
    assert r.status_code == 400 and r["Content-Type"].startswith("text/plain")
    text = r.content.decode()
    assert text.startswith("No export: fix the filters first (") and f"{field}: " in text
    assert message in text


def test_an_unknown_account_filter_is_listed_on_the_page(client, admin_user, book):
    """The account filter is a hidden field (set from an account's page): its error has no
    field to sit beside, so the page lists it."""
    client.force_login(admin_user)
    r = client.get(reverse("surveys:results"), {"account": "abc"})
    assert r.status_code == 400
    assert "Account: Enter a whole number." in r.content.decode()


def test_the_end_field_says_its_day_is_not_included(client, admin_user, book):
    """The periods are [start, end): the help says so of the end day, not of the first."""
    client.force_login(admin_user)
    page = client.get(reverse("surveys:results")).content.decode()
    assert (
        "The end day is not included: answers and invitations up to the day before count." in page
    )
    assert "First day not included" not in page


def test_the_results_page_says_its_answer_times_are_utc(client, book, admin_user):
    """The comments table prints each answer's time of day: in UTC, and its column says so."""
    client.force_login(admin_user)
    body = client.get(
        reverse("surveys:results"), {"start": "2026-03-01", "end": "2026-04-01"}
    ).content.decode()
    assert '<th scope="col">Answered (UTC)</th>' in body
