"""The alert webhook settings are checked at startup (``manage.py check``, ``--deploy``,
``migrate``, ``runserver``) with the save-time rules of a playbook's webhook, without DNS."""

from __future__ import annotations

import socket

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from reports.checks import alert_destinations_check


@pytest.fixture
def no_dns(monkeypatch):
    """Any lookup that is not a numeric-address parse fails the test: the check must not
    ask a name server."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        flags = kwargs.get("flags", args[3] if len(args) > 3 else 0)
        assert flags & socket.AI_NUMERICHOST, f"DNS lookup of {host!r}"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _messages(settings, **urls):
    settings.REPORTS_ALERT_WEBHOOK_URL = urls.get("webhook", "")
    settings.REPORTS_ALERT_SLACK_URL = urls.get("slack", "")
    return [(e.id, e.msg) for e in alert_destinations_check()]


def test_unset_and_public_addresses_pass_without_dns(settings, no_dns):
    settings.OUTBOX_ALLOW_PRIVATE = False
    assert _messages(settings) == []
    assert (
        _messages(
            settings,
            webhook="https://hooks.example.com/opencs",
            slack="https://hooks.slack.com/services/T0/B0/x",
        )
        == []
    )


def test_each_bad_address_names_its_setting_and_what_is_wrong(settings, no_dns):
    settings.OUTBOX_ALLOW_PRIVATE = False
    assert _messages(settings, webhook="ftp://hooks.example.com/x", slack="http://127.1/hook") == [
        (
            "reports.E001",
            "REPORTS_ALERT_WEBHOOK_URL cannot be used: 'ftp://hooks.example.com/x' is not an "
            "http(s) URL.",
        ),
        (
            "reports.E002",
            "REPORTS_ALERT_SLACK_URL cannot be used: 127.1 is a loopback address (this "
            "machine); internal addresses are refused (OUTBOX_ALLOW_PRIVATE allows them).",
        ),
    ]
    assert _messages(settings, webhook="http://localhost:9000/") == [
        (
            "reports.E001",
            "REPORTS_ALERT_WEBHOOK_URL cannot be used: localhost is this machine; internal "
            "addresses are refused (OUTBOX_ALLOW_PRIVATE allows them).",
        )
    ]
    assert _messages(settings, slack="http://169.254.169.254/latest") == [
        (
            "reports.E002",
            "REPORTS_ALERT_SLACK_URL cannot be used: 169.254.169.254 is a link-local address "
            "(e.g. cloud metadata); internal addresses are refused (OUTBOX_ALLOW_PRIVATE "
            "allows them).",
        )
    ]


def test_outbox_allow_private_lets_an_internal_address_through_but_not_another_scheme(
    settings, no_dns
):
    settings.OUTBOX_ALLOW_PRIVATE = True
    assert _messages(settings, webhook="http://10.0.0.5/hook", slack="http://localhost/") == []
    assert [i for i, _ in _messages(settings, slack="javascript:alert(1)")] == ["reports.E002"]


def test_manage_py_check_deploy_stops_on_a_bad_address(settings, no_dns):
    settings.OUTBOX_ALLOW_PRIVATE = False
    settings.REPORTS_ALERT_WEBHOOK_URL = "http://192.168.1.10/alerts"
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", "--deploy")
    text = str(raised.value)
    assert "(reports.E001) REPORTS_ALERT_WEBHOOK_URL cannot be used: 192.168.1.10 is a " in text
    assert "HINT: Set REPORTS_ALERT_WEBHOOK_URL to a public http(s) address" in text
    settings.REPORTS_ALERT_WEBHOOK_URL = "https://hooks.example.com/opencs"
    call_command("check")  # no error once it is public
