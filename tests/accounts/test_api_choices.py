"""A value that is none of a choice filter's choices is a 400 naming the value and listing
the valid ones, on every list of the read API (``accounts.filters.name_the_choices``), in
the words of the KPI endpoints' ``period``. The lists and their choice filters are found
from the URL configuration, so a list or a choice filter added later is checked too."""

from __future__ import annotations

import pytest
from django import forms
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.mixins import ListModelMixin

from tests.factories import AccountFactory, token_client

pytestmark = pytest.mark.django_db

API = "api/v1/"


def _api_lists() -> list[tuple[str, str, type]]:
    """(url name, pattern, view class) of every list (a GET of a ListModelMixin) under
    /api/v1/."""

    def walk(patterns, prefix, namespace):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = ":".join(x for x in (namespace, p.namespace) if x) or None
                yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                view = getattr(p.callback, "view_class", None)
                route = prefix + str(p.pattern)
                if route.startswith(API) and view and issubclass(view, ListModelMixin):
                    yield f"{namespace}:{p.name}" if namespace else p.name, route, view

    return list(walk(get_resolver().url_patterns, "", None))


def _declared_values(f) -> list[str]:
    """The keys of the choices the filter was declared with (of its form field's when it
    was declared without), less the empty one django-filter adds for "no filter"."""
    choices = f.extra.get("choices", f.field.choices)
    if callable(choices):
        choices = choices()
    return [str(key) for key, _label in choices if key != ""]


def _choice_filters() -> list[tuple[str, str, str, list[str]]]:
    """(url name, pattern, parameter, valid values) of every choice filter of every list."""
    found = []
    for name, route, view_class in _api_lists():
        view = view_class()
        filterset_class = DjangoFilterBackend().get_filterset_class(view, view_class.queryset)
        if filterset_class is None:
            continue
        for param, f in filterset_class.base_filters.items():
            field = f.field
            if isinstance(field, forms.ChoiceField) and not isinstance(
                field, forms.ModelChoiceField
            ):
                found.append((name, route, param, _declared_values(f)))
    return found


CHOICE_FILTERS = _choice_filters()


@pytest.fixture
def api(admin_user):
    return token_client(admin_user)


@pytest.fixture
def account(admin_user):
    return AccountFactory(external_id="A-1", owner=admin_user)


def _url(name: str, route: str, account) -> str:
    kwargs = {"account_id": account.pk} if "<int:account_id>" in route else {}
    assert route.count("<") == len(kwargs), f"teach this test the URL arguments of {route}"
    return reverse(name, kwargs=kwargs)


def test_the_walk_finds_the_choice_filters():
    # a walk that found nothing would pass every test below
    found = {(name, param) for name, _route, param, _values in CHOICE_FILTERS}
    assert {
        ("api:account-list", "lifecycle_stage"),
        ("api:account-list", "band"),
        ("api:stakeholder-list", "role"),
        ("api:ticket-list", "status"),
        ("api:ticket-list", "priority"),
        ("api:invoice-list", "status"),
        ("api:activity-list", "kind"),
        ("api:timeline-list", "kind"),
        ("api:import-list", "status"),
        ("api:import-list", "origin"),
        ("playbooks-api:cta-list", "status"),
        ("playbooks-api:cta-list", "type"),
        ("playbooks-api:cta-list", "priority"),
    } <= found
    assert all(values for *_rest, values in CHOICE_FILTERS)


@pytest.mark.parametrize(
    ("name", "route", "param", "values"),
    CHOICE_FILTERS,
    ids=[f"{name}?{param}" for name, _route, param, _values in CHOICE_FILTERS],
)
def test_a_bogus_choice_lists_the_valid_ones(api, account, name, route, param, values):
    url = _url(name, route, account)
    r = api.get(url, {param: "bogus"})
    assert r.status_code == 400, r.content
    assert r.json() == {param: [f'"bogus" is not a valid choice: {", ".join(values)}.']}
    for value in values:  # and each value it lists is one it takes
        assert api.get(url, {param: value}).status_code == 200, (param, value)


def test_an_unknown_ticket_status(api, account):
    r = api.get(reverse("api:ticket-list"), {"status": "bogus"})
    assert r.status_code == 400
    assert r.json() == {"status": ['"bogus" is not a valid choice: open, pending, solved, closed.']}


def test_an_unknown_cta_status_among_known_ones(api, account):
    r = api.get(reverse("playbooks-api:cta-list"), {"status": ["open", "snoozed"]})
    assert r.status_code == 400
    assert r.json() == {
        "status": ['"snoozed" is not a valid choice: pending, open, in_progress, done, cancelled.']
    }


def test_a_percent_in_the_value_is_shown_as_given(api, account):
    r = api.get(reverse("api:invoice-list"), {"status": "50%d"})
    assert r.status_code == 400
    (message,) = r.json()["status"]
    assert message.startswith('"50%d" is not a valid choice: ')
