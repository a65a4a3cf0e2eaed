"""voice.themes on texts written here; pure."""

from __future__ import annotations

from voice.themes import find_themes

EXPORT = [
    "Export is slow",
    "The CSV export is so slow!",
    "export is really slow today",
    "Exporting reports is slow",
    "Slow export again, please fix",
    "CSV export slow for large reports",
]
BILLING = [
    "Invoice shows the wrong amount",
    "Billing is confusing, invoice amount wrong",
    "Confusing invoice, billing amount wrong",
    "Billing confusion about the invoice amount",
    "Wrong invoice amount charged",
]
DASHBOARDS = [
    "Love the new dashboards",
    "Dashboards are great",
    "great dashboards, team loves them",
    "The dashboard redesign is great",
    "New dashboards are great",
]
SSO = [
    "SSO login fails",
    "Cannot log in with SSO",
    "SSO login broken for new users",
    "login fails after SSO change",
]
NOISE = ["hello", "thanks!", "", "<p></p>", "ok"]
TEXTS = EXPORT + BILLING + DASHBOARDS + SSO + NOISE


def _theme_of(themes, index):
    return [t for t in themes if index in t.members]


def test_near_duplicate_complaints_land_in_one_theme():
    themes = find_themes(TEXTS)
    for group in (EXPORT, BILLING, DASHBOARDS, SSO):
        indices = [TEXTS.index(t) for t in group]
        homes = {id(_theme_of(themes, i)[0]) for i in indices if _theme_of(themes, i)}
        assert len(homes) == 1, group
        assert all(_theme_of(themes, i) for i in indices), group


def test_different_complaints_are_different_themes():
    themes = find_themes(TEXTS)
    export = _theme_of(themes, 0)[0]
    billing = _theme_of(themes, TEXTS.index(BILLING[0]))[0]
    assert export is not billing
    assert "export" in export.label and "slow" in export.label
    assert "invoice" in billing.terms or "billing" in billing.terms


def test_texts_without_terms_belong_to_no_theme():
    themes = find_themes(TEXTS)
    members = {i for t in themes for i in t.members}
    for text in NOISE:
        assert TEXTS.index(text) not in members


def test_quotes_are_three_distinct_members():
    texts = EXPORT + ["Export is slow", "export is slow", "EXPORT IS SLOW"] + BILLING
    themes = find_themes(texts)
    for theme in themes:
        distinct = {" ".join(texts[i].lower().split()) for i in theme.members}
        quoted = [" ".join(texts[i].lower().split()) for i in theme.quotes]
        assert len(quoted) == len(set(quoted)) == min(3, len(distinct))
        assert set(theme.quotes) <= set(theme.members)
        assert theme.quotes[0] == theme.members[0]  # the nearest the centre first


def test_the_same_texts_give_the_same_themes():
    assert find_themes(TEXTS) == find_themes(TEXTS)


def test_too_few_or_empty_texts_give_no_themes():
    assert find_themes([]) == []
    assert find_themes(["Export is slow"] * 3) == []
    assert find_themes(["", " ", "<br>", "hi", "thanks", "ok", "yes"]) == []


def test_small_groups_are_not_themes():
    themes = find_themes(TEXTS, min_size=6)
    assert [len(t.members) for t in themes] == [6]  # only the export complaints
