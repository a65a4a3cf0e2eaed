"""The data import page says which columns each file needs: every kind the intake takes
(responses.csv too, which the surveys app registers), its required and optional columns as
the intake defines them, and a link to the full contract (docs/data-import.md), served by the
app with an anchor per file."""

from __future__ import annotations

import re

import pytest

from accounts import intake
from accounts.intake.columns import COLUMNS

pytestmark = pytest.mark.django_db


def _row(page: str, kind: str) -> str:
    match = re.search(rf'<tr id="columns-{kind}">(.*?)</tr>', page, flags=re.S)
    assert match, kind
    return match.group(1)


def test_the_page_lists_every_file_with_its_required_and_optional_columns(client, admin_user):
    client.force_login(admin_user)
    page = client.get("/imports/").content.decode()
    assert "responses" in intake.kinds()
    for kind in intake.kinds():
        assert f'<a href="#columns-{kind}"><code>{kind}.csv</code></a>' in page  # the order
        required, optional = _row(page, kind).split("</td>", 1)
        for column in COLUMNS[kind]:
            cell = required if column.required else optional
            assert f"<code>{column.name}</code>" in cell, (kind, column.name)
    # a column that is required here is listed as required
    contracts = _row(page, "contracts").split("</td>")[0]
    assert "<code>mrr</code>" in contracts and "<code>quantity</code>" not in contracts
    assert "stakeholder_email or account_external_id: at least one" in _row(page, "responses")
    # the upload field's help names every file too
    help_text = re.search(r'id="id_files_helptext">(.*?)</p>', page, flags=re.S).group(1)
    assert help_text.startswith(", ".join(f"{k}.csv" for k in intake.kinds()))
    assert 'href="/imports/format/"' in page


def test_the_full_contract_is_served_with_an_anchor_per_file(client, admin_user, csm):
    client.force_login(admin_user)
    page = client.get("/imports/").content.decode()
    doc = client.get("/imports/format/")
    assert doc.status_code == 200
    ids = set(re.findall(r'<h\d id="([^"]+)"', doc.content.decode()))
    anchors = dict(
        re.findall(
            r'<tr id="columns-(\w+)">\s*<th scope="row"><a href="/imports/format/#([^"]+)"', page
        )
    )
    assert set(anchors) == set(intake.kinds())
    assert anchors["events"] == "eventscsv--eventscsvgz"
    assert set(anchors.values()) <= ids
    # the doc's tables name the same columns the page lists (from the code)
    for kind in intake.kinds():
        section = doc.content.decode().split(f'id="{anchors[kind]}"', 1)[1].split("<h2", 1)[0]
        for column in COLUMNS[kind]:
            assert f"<code>{column.name}</code>" in section, (kind, column.name)
    client.force_login(csm)
    assert client.get("/imports/format/").status_code == 403
