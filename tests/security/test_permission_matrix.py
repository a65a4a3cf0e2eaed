"""Every URL × anonymous, outsider (signed in, no role), CSM, manager and admin.

The list of URLs comes from the URL configuration itself: a new URL without a rule in
``RULES`` fails ``test_every_url_has_a_rule``, so nobody can add a page or an endpoint
without deciding who may reach it. Each rule names the expected status per persona for a
GET (the matrix is about *reaching* a URL; writes are refused by the same checks, and
their own tests cover them).

Kinds of answers: 200 (or another success/redirect inside the app) = allowed; "login" = sent
to the sign-in page; 401 / 403 / 404 / 405 as named. 404 for an object outside the user's
book is deliberate: it does not reveal that the object exists."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "outsider", "csm", "manager", "admin")
OK = "ok"  # any 2xx, or a 3xx that does not go to the sign-in page
LOGIN = "login"


@dataclass(frozen=True)
class Rule:
    expect: dict[str, object]  # persona -> OK | LOGIN | status code
    kwargs: str = ""  # which object of the world fills the URL's arguments
    query: dict = field(default_factory=dict)


def _all(value, **overrides) -> dict:
    return {p: overrides.get(p, value) for p in PERSONAS}


# Shapes of rules that repeat
PUBLIC = Rule(_all(OK))
PAGE_ANY_ROLE = Rule(_all(OK, anonymous=LOGIN))
PAGE_ADMIN = Rule(_all(403, anonymous=LOGIN, admin=OK))
API_READ = Rule(_all(OK, anonymous=401))  # lists filter to the caller's book
API_WRITE_ONLY = Rule(_all(403, anonymous=401, admin=405))  # POST-only, admins only
KPI_READ = Rule(_all(OK, anonymous=401), query={"period": "month"})  # over the caller's book


def _api_object(key: str) -> Rule:
    return Rule(_all(OK, anonymous=401, outsider=404), kwargs=key)


RULES: dict[str, Rule] = {
    "home": PAGE_ANY_ROLE,
    "healthz": PUBLIC,
    "login": Rule(_all(OK)),  # signed-in users are sent home, not shown the form
    "password_reset": PUBLIC,
    "password_reset_done": PUBLIC,
    "password_reset_confirm": Rule(_all(OK), kwargs="reset_link"),  # a bad link: its page
    "password_reset_complete": PUBLIC,
    "logout": Rule(_all(405, anonymous=LOGIN)),  # POST only (Django's LogoutView)
    "accounts:import-list": PAGE_ADMIN,
    "accounts:import-format": PAGE_ADMIN,
    "accounts:import-detail": Rule(_all(403, anonymous=LOGIN, admin=OK), kwargs="import_record"),
    "kpis:report": KPI_READ,
    "kpis:movements": KPI_READ,
    "kpis:cohorts": KPI_READ,
    "api:account-list": API_READ,
    "api:account-bulk": API_WRITE_ONLY,
    "api:account-detail": _api_object("account"),
    "api:timeline-list": _api_object("account_id"),
    "api:usage-list": _api_object("account_id"),
    "api:milestone-list": _api_object("account_id"),  # POST: the account's CSM, manager, admin
    "api:milestone-detail": _api_object("milestone"),  # DELETE: the same
    # an account's health, inside the caller's book (the world's account has two snapshots)
    "health-api:latest": _api_object("account_id"),
    "health-api:history": Rule(
        _api_object("account_id").expect,
        kwargs="account_id",
        query={"start": "2024-01-01", "end": "2024-02-01"},
    ),
    "health-api:changes": _api_object("account_id"),
    "api:contract-list": API_READ,
    "api:contract-bulk": API_WRITE_ONLY,
    "api:contract-detail": _api_object("contract"),
    "api:stakeholder-list": API_READ,
    "api:stakeholder-bulk": API_WRITE_ONLY,
    "api:stakeholder-detail": _api_object("stakeholder"),
    "api:ticket-list": API_READ,
    "api:ticket-bulk": API_WRITE_ONLY,
    "api:ticket-detail": _api_object("ticket"),
    "api:invoice-list": API_READ,
    "api:invoice-bulk": API_WRITE_ONLY,
    "api:invoice-detail": _api_object("invoice"),
    "api:activity-list": API_READ,
    "api:activity-detail": _api_object("activity"),
    "api:import-list": API_READ,  # admins see every import, anyone else their own
    "api:import-detail": Rule(_all(404, anonymous=401, admin=OK), kwargs="import_record"),
    "api:event-batch": API_WRITE_ONLY,
    "api:track": API_WRITE_ONLY,
    "api:identify": API_WRITE_ONLY,
    "api:group": API_WRITE_ONLY,
    "api:batch": API_WRITE_ONLY,
    "api-schema": API_READ,
    "api-docs": PAGE_ANY_ROLE,
    # the CSM workspace (issue 6): pages over the caller's book; admin screens 403
    "workspace:account": Rule(_all(OK, anonymous=LOGIN, outsider=404), kwargs="account"),
    "workspace:activity-create": Rule(_all(405, anonymous=LOGIN), kwargs="account"),
    "workspace:standing-refresh": Rule(_all(405, anonymous=LOGIN), kwargs="account"),
    "workspace:first-value": Rule(_all(405, anonymous=LOGIN), kwargs="account"),  # POST only
    "workspace:health-override-create": Rule(_all(405, anonymous=LOGIN), kwargs="account"),
    "workspace:renewals": PAGE_ANY_ROLE,
    "workspace:dashboard": PAGE_ANY_ROLE,
    "workspace:drilldown": PAGE_ANY_ROLE,
    "workspace:cohorts": PAGE_ANY_ROLE,
    "workspace:metrics-doc": PAGE_ANY_ROLE,
    "workspace:manage": PAGE_ADMIN,
    "workspace:health-models": PAGE_ADMIN,
    "workspace:health-model-edit": Rule(PAGE_ADMIN.expect, kwargs="health_model"),
    "workspace:health-model-preview": Rule(_all(405, anonymous=LOGIN), kwargs="health_model"),
    "workspace:health-model-versions": Rule(PAGE_ADMIN.expect, kwargs="health_model"),
    # POST only, like the preview; the confirmation is the versions page (?restore=<id>)
    "workspace:health-model-restore": Rule(_all(405, anonymous=LOGIN), kwargs="health_model"),
    "workspace:health-assignments": PAGE_ADMIN,
    "workspace:health-rule-save": Rule(_all(405, anonymous=LOGIN)),  # POST only, admins only
    "workspace:health-rule-remove": Rule(_all(405, anonymous=LOGIN), kwargs="health_rule"),
    "workspace:health-default-save": Rule(_all(405, anonymous=LOGIN)),  # POST only, admins only
    "workspace:health-model-copy": Rule(_all(405, anonymous=LOGIN)),
    "workspace:health-rescore": Rule(_all(405, anonymous=LOGIN)),
    "workspace:backfill-status": PAGE_ADMIN,
    "workspace:pipeline-runs": PAGE_ADMIN,
    "workspace:backfill-start": Rule(_all(405, anonymous=LOGIN)),  # POST only
    "workspace:api-tokens": PAGE_ADMIN,
    "workspace:api-token-create": Rule(_all(405, anonymous=LOGIN)),  # POST only, admins only
    "workspace:api-token-revoke": Rule(_all(405, anonymous=LOGIN), kwargs="api_token"),
    "workspace:users": PAGE_ADMIN,
    "workspace:user-update": Rule(_all(405, anonymous=LOGIN), kwargs="account"),
    # playbooks: configured by admins; CTAs worked by whoever sees the account
    "playbooks:list": PAGE_ADMIN,
    "playbooks:create": PAGE_ADMIN,
    "playbooks:edit": Rule(PAGE_ADMIN.expect, kwargs="playbook"),
    "playbooks:cta-list": PAGE_ANY_ROLE,  # filtered to the caller's book
    "playbooks:cta-detail": Rule(_all(OK, anonymous=LOGIN, outsider=404), kwargs="cta"),
    "playbooks:cta-complete": Rule(_all(405, anonymous=LOGIN), kwargs="cta"),  # POST only
    "playbooks:cta-step-complete": Rule(_all(405, anonymous=LOGIN), kwargs="cta_step"),
    "playbooks:cta-snooze": Rule(_all(405, anonymous=LOGIN), kwargs="cta"),
    "playbooks:cta-status": Rule(_all(405, anonymous=LOGIN), kwargs="cta"),
    "playbooks:cta-reassign": Rule(_all(405, anonymous=LOGIN), kwargs="cta"),
    "playbooks:cta-comment": Rule(_all(405, anonymous=LOGIN), kwargs="cta"),
    "playbooks-api:playbook-list": API_READ,  # configuration, no customer data
    "playbooks-api:playbook-detail": Rule(_all(OK, anonymous=401), kwargs="playbook"),
    "playbooks-api:cta-list": API_READ,
    "playbooks-api:cta-detail": _api_object("cta"),
    # surveys: the public link pages need no sign-in (GET never writes); campaigns and
    # results for every role (over the accounts each may see), the editor for managers up
    "surveys:respond": Rule(_all(OK), kwargs="invitation"),
    "surveys:thanks": Rule(_all(OK), kwargs="invitation"),
    "surveys:unsubscribe": Rule(_all(OK), kwargs="invitation"),
    "surveys:campaign-list": Rule(_all(OK, anonymous=LOGIN, outsider=403)),
    "surveys:campaign-new": Rule(_all(403, anonymous=LOGIN, manager=OK, admin=OK)),
    "surveys:campaign-edit": Rule(
        _all(403, anonymous=LOGIN, manager=OK, admin=OK), kwargs="campaign"
    ),
    "surveys:campaign-send": Rule(_all(405, anonymous=LOGIN), kwargs="campaign"),  # POST only
    "surveys:results": Rule(_all(OK, anonymous=LOGIN, outsider=403)),
    "surveys:results-csv": Rule(_all(OK, anonymous=LOGIN, outsider=403)),
    "survey-responses": API_WRITE_ONLY,
    # reports (KPI targets): pages for managers and admins; the digest choice for any role;
    # the digest's unsubscribe link needs no sign-in (a signed token; GET writes nothing)
    "reports:targets": Rule(_all(403, anonymous=LOGIN, manager=OK, admin=OK)),
    "reports:target-edit": Rule(
        _all(403, anonymous=LOGIN, manager=OK, admin=OK), kwargs="kpi_target"
    ),
    "reports:off-track": Rule(_all(403, anonymous=LOGIN, manager=OK, admin=OK)),
    "reports:scheduled": Rule(_all(403, anonymous=LOGIN, manager=OK, admin=OK)),
    "reports:digest": Rule(_all(OK, anonymous=LOGIN, outsider=403)),
    "reports:unsubscribe": Rule(_all(OK), kwargs="digest_link"),
    # anyone signed in chooses their own emails (a person without a role may own CTAs)
    "reports:notifications": Rule(_all(OK, anonymous=LOGIN)),
    # a CTA email's unsubscribe link: a signed token, no sign-in; GET writes nothing
    "playbooks:cta-email-unsubscribe": Rule(_all(OK), kwargs="cta_email_link"),
    "reports-api:target-list": Rule(_all(OK, anonymous=401, outsider=403)),
    "reports-api:target-detail": Rule(_all(OK, anonymous=401, outsider=403), kwargs="kpi_target"),
    # voice of the customer: themes for every role (a role-less user gets 404), an account's
    # voice and a theme's quotes only inside the user's book, the north star for admins
    "voice:themes": Rule(_all(OK, anonymous=LOGIN, outsider=404)),
    "voice:themes-recompute": Rule(_all(405, anonymous=LOGIN)),  # POST only
    "voice:theme-detail": Rule(_all(OK, anonymous=LOGIN, outsider=404), kwargs="theme"),
    "voice:account": Rule(_all(OK, anonymous=LOGIN, outsider=404), kwargs="account"),
    "voice:north-star": PAGE_ADMIN,
}

# Django's admin (namespace "admin") decides by is_staff and model permissions itself and
# is checked by tests/security/test_admin_access.py; it is the only namespace left out here.
SKIPPED_NAMESPACES = ("admin",)


def url_names() -> list[tuple[str | None, str]]:
    """(name, pattern) of every URL the project serves, from the URL configuration."""

    def walk(patterns, prefix, namespace):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = ":".join(x for x in (namespace, p.namespace) if x) or None
                if p.namespace in SKIPPED_NAMESPACES:
                    continue
                yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                name = f"{namespace}:{p.name}" if namespace and p.name else p.name
                yield name, prefix + str(p.pattern)

    return list(walk(get_resolver().url_patterns, "", None))


def test_every_url_has_a_rule():
    urls = url_names()
    unnamed = [pattern for name, pattern in urls if not name]
    assert not unnamed, f"name these URLs so the matrix can hold them: {unnamed}"
    missing = sorted({name for name, _ in urls} - set(RULES))
    assert not missing, f"add a rule to RULES for: {missing}"
    stale = sorted(set(RULES) - {name for name, _ in urls})
    assert not stale, f"rules for URLs that no longer exist: {stale}"


def _kwargs(rule: Rule, pattern: str, objects: dict) -> dict:
    if not rule.kwargs:
        return {}
    if rule.kwargs == "reset_link":
        return {"uidb64": "MQ", "token": "not-a-token"}
    if rule.kwargs == "milestone":
        milestone = objects["milestone"]
        return {"account_id": milestone.account_id, "kind": milestone.kind}
    if rule.kwargs == "cta_step":
        cta = objects["cta"]
        return {"pk": cta.pk, "step_pk": cta.steps.first().pk}
    obj = objects["account" if rule.kwargs == "account_id" else rule.kwargs]
    if "<uuid:uuid>" in pattern:
        return {"uuid": obj.uuid}
    if "<str:token>" in pattern:
        return {"token": obj.token}
    if "<int:account_id>" in pattern:
        return {"account_id": obj.pk}
    return {"pk": obj.pk}


def _outcome(response) -> object:
    if response.status_code in (301, 302, 303, 307, 308):
        target = response.headers.get("Location", "")
        return LOGIN if reverse("login") in target and "next=" in target else OK
    if 200 <= response.status_code < 300:
        return OK
    return response.status_code


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_persona_reaches_exactly_what_its_rule_says(client, world, persona):
    objects, users = world
    if persona != "anonymous":
        client.force_login(users[persona])
    wrong = []
    for name, pattern in url_names():
        rule = RULES[name]
        url = reverse(name, kwargs=_kwargs(rule, pattern, objects))
        got = _outcome(client.get(url, rule.query))
        if got != rule.expect[persona]:
            wrong.append(f"{name} ({url}): expected {rule.expect[persona]}, got {got}")
    assert not wrong, "\n".join(wrong)
