"""responses.csv through ``import_data --kind responses`` and POST /api/v1/survey-responses/:
all-or-nothing, errors naming row and column, re-import changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken, ImportRecord, TimelineEntry
from surveys.models import Response
from tests.factories import AccountFactory, StakeholderFactory

pytestmark = pytest.mark.django_db

GOOD = """stakeholder_email,account_external_id,kind,score,comment,answered_at
ann@acme.example,,nps,9,Great support,2025-03-01T09:30:00Z
,ACME,csat,2,Slow,2025-03-02T00:00:00Z
BOB@ACME.EXAMPLE,ACME,ces,6,,2025-03-03T10:00:00+02:00
"""


@pytest.fixture
def acme(db):
    account = AccountFactory(external_id="ACME", name="Acme")
    ann = StakeholderFactory(account=account, email="Ann@Acme.example", name="Ann Lee")
    bob = StakeholderFactory(account=account, email="bob@acme.example", name="Bob")
    return account, ann, bob


def _file(tmp_path, text, name="responses.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_import_command_writes_answers_and_facts_once(tmp_path, acme, settings):
    account, ann, bob = acme
    path = _file(tmp_path, GOOD)
    call_command("import_data", str(path), "--kind", "responses")
    rows = {r.kind: r for r in Response.objects.all()}
    assert rows["nps"].stakeholder_id == ann.pk and rows["nps"].score == 9
    assert rows["csat"].stakeholder_id is None and rows["csat"].account_id == account.pk
    assert rows["csat"].answered_at == dt.datetime(2025, 3, 2, tzinfo=dt.UTC)
    assert rows["ces"].stakeholder_id == bob.pk
    assert rows["ces"].answered_at == dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)
    assert all(r.source == "import" and r.is_current for r in rows.values())
    facts = TimelineEntry.objects.filter(kind="survey_answer")
    assert facts.count() == 3
    assert facts.get(key=f"survey-response:{rows['nps'].pk}").title == "NPS 9 from Ann Lee"
    # the file is also picked by name from a directory, and a re-import changes nothing
    call_command("import_data", str(tmp_path))
    assert Response.objects.count() == 3 and facts.count() == 3
    record = ImportRecord.objects.order_by("-created_at").first()
    assert (record.unchanged, record.created) == (3, 0)
    # a changed comment updates the answer in place
    _file(tmp_path, GOOD.replace("Great support", "Great!"))
    call_command("import_data", str(path), "--kind", "responses")
    assert Response.objects.get(kind="nps").comment == "Great!"
    assert Response.objects.count() == 3


def test_bad_rows_reject_the_file_with_row_and_column(tmp_path, acme, capsys):
    StakeholderFactory(email="twice@x.example")
    StakeholderFactory(email="twice@x.example")
    bad = (
        "stakeholder_email,account_external_id,kind,score,comment,answered_at\n"
        "ann@acme.example,,nps,11,,2025-03-01T00:00:00Z\n"  # row 2: out of range
        ",,csat,3,,2025-03-01T00:00:00Z\n"  # row 3: nobody
        "nobody@x.example,,ces,3,,2025-03-01T00:00:00Z\n"  # row 4: unknown email
        ",NOPE,nps,3,,2025-03-01T00:00:00Z\n"  # row 5: unknown account
        "twice@x.example,,nps,3,,2025-03-01T00:00:00Z\n"  # row 6: ambiguous
        "ann@acme.example,,nps,9,,2999-01-01T00:00:00Z\n"  # row 7: future
        "ann@acme.example,,npx,9,,2025-03-01T00:00:00Z\n"  # row 8: unknown kind
        "ann@acme.example,,nps,9,,2025-03-05T00:00:00Z\n"
        "ann@acme.example,,nps,8,,2025-03-05T00:00:00Z\n"  # row 10: same answer as row 9
    )
    with pytest.raises(CommandError, match="import rejected: 8 bad row"):
        call_command("import_data", str(_file(tmp_path, bad)), "--kind", "responses")
    err = capsys.readouterr().err
    for expected in (
        "row 2, column score: the score must be from 0 to 10, got 11 (nps)",
        "row 3, column stakeholder_email: give stakeholder_email or account_external_id",
        "row 4, column stakeholder_email: no stakeholder with email nobody@x.example",
        "row 5, column account_external_id: unknown account NOPE",
        "row 6, column stakeholder_email: twice@x.example is a stakeholder of 2 accounts",
        "row 7, column answered_at: 2999-01-01T00:00:00+00:00 is in the future",
        "row 8, column kind:",
        "row 10, column answered_at: the same answer is already in row 9",
    ):
        assert expected in err, expected
    assert Response.objects.count() == 0 and not TimelineEntry.objects.exists()


def test_api_batch_same_rules(admin_user, acme):
    _, key = ApiToken.issue(user=admin_user, name="t")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    url = reverse("survey-responses")
    row = {
        "stakeholder_email": "ann@acme.example",
        "kind": "nps",
        "score": 10,
        "answered_at": "2025-04-01T00:00:00Z",
    }
    bad = api.post(url, {"rows": [row, {**row, "score": -3}]}, format="json")
    assert bad.status_code == 400
    assert bad.json()["errors"][0] | {"source": ""} == {
        "source": "", "row": 2, "column": "score", "message": "the score must be from 0 to 10, got -3 (nps)",
    }  # fmt: skip
    assert Response.objects.count() == 0
    ok = api.post(url, {"rows": [row]}, format="json")
    assert ok.status_code == 200 and ok.json()["created"] == 1
    assert api.post(url, [row], format="json").json()["unchanged"] == 1
    assert APIClient().post(url, [row], format="json").status_code == 401
