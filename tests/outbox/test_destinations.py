"""Where webhook and Slack calls may go (server-side request forgery), and Slack escaping.

Nothing leaves the machine: the name server is replaced by a fake ``getaddrinfo`` and the
only receiver listens on 127.0.0.1 (allowed by ``OUTBOX_ALLOW_PRIVATE`` where a test says so)."""

from __future__ import annotations

import socket

import pytest

from outbox import destinations, services, slack
from outbox.models import Message
from tests.outbox.test_outbox import Receiver


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:8000/hook", "127.0.0.1 is a loopback address"),
        ("http://127.1/hook", "127.1 is a loopback address"),
        ("http://2130706433/hook", "2130706433 is a loopback address"),
        ("http://localhost/hook", "localhost is this machine"),
        ("http://api.localhost/hook", "api.localhost is this machine"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("https://10.1.2.3/hook", "10.1.2.3 is a private-network address"),
        ("https://192.168.0.10/hook", "192.168.0.10 is a private-network address"),
        ("https://172.16.5.4/hook", "172.16.5.4 is a private-network address"),
        ("https://100.64.0.1/hook", "100.64.0.1 is not a public address"),
        ("https://0.0.0.0/hook", "0.0.0.0 is an unspecified address"),
        ("https://[::1]/hook", "::1 is a loopback address"),
        ("https://[::ffff:10.0.0.1]/hook", "::ffff:10.0.0.1 is a private-network address"),
        ("https://[fe80::1]/hook", "fe80::1 is a link-local address"),
        ("https://224.0.0.1/hook", "224.0.0.1 is a multicast address"),
        ("ftp://hooks.example.com/x", "is not an http(s) URL"),
        ("file:///etc/passwd", "is not an http(s) URL"),
    ],
)
def test_internal_or_non_http_destinations_are_refused_with_the_reason(url, words, settings):
    settings.OUTBOX_ALLOW_PRIVATE = False
    problem = destinations.url_problem(url)
    assert problem and words in problem


def test_public_names_pass_without_a_dns_lookup(settings, monkeypatch):
    settings.OUTBOX_ALLOW_PRIVATE = False
    asked = []
    real = socket.getaddrinfo

    def spy(host, *args, **kwargs):
        asked.append((host, kwargs.get("flags", 0)))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    assert destinations.url_problem("https://hooks.slack.com/services/T/B/x") is None
    assert destinations.url_problem("https://93.184.216.34/hook") is None
    # only numeric parsing, never a name server
    assert all(flags & socket.AI_NUMERICHOST for _, flags in asked)


def test_the_setting_lets_internal_addresses_through_but_not_other_schemes(settings):
    settings.OUTBOX_ALLOW_PRIVATE = True
    assert destinations.url_problem("http://127.0.0.1:8000/hook") is None
    assert destinations.url_problem("http://169.254.169.254/") is None
    assert "not an http(s) URL" in destinations.url_problem("gopher://127.0.0.1/")


def _resolving(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Replace the name server: ``answers`` maps a name to its addresses; returns the names
    asked. Numeric hosts still parse as the real resolver does."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host in answers:
            if kwargs.get("flags", 0) & socket.AI_NUMERICHOST:  # a name is not a number
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            asked.append(host)
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                for address in answers[host]
            ]
        flags = kwargs.pop("flags", 0) | socket.AI_NUMERICHOST
        try:
            return real(host, port, *args, flags=flags, **kwargs)
        except socket.gaierror:
            raise AssertionError(f"a DNS lookup of {host!r} would leave the machine") from None

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


@pytest.mark.django_db
@pytest.mark.parametrize(
    "answers",
    [["10.0.0.5"], ["93.184.216.34", "169.254.169.254"]],  # any internal answer refuses
    ids=["private", "one-of-two"],
)
def test_a_name_resolving_inward_is_refused_at_send_and_failed_at_once(
    answers, settings, monkeypatch
):
    settings.OUTBOX_ALLOW_PRIVATE = False
    asked = _resolving(monkeypatch, {"hooks.example.com": answers})
    connects = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connects.append(a))
    message = services.webhook_enqueue(
        key="w", url="https://hooks.example.com/x", body={"n": 1}, source="playbook:1"
    )
    services.message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert asked == ["hooks.example.com"] and connects == []
    # refused is final: failed after one attempt, the reason kept for the admin, no retries
    assert message.status == Message.Status.FAILED and message.attempts == 1
    assert "DestinationRefused: hooks.example.com resolves to " in message.last_error
    assert "internal addresses are refused" in message.last_error
    assert services.messages_deliver_due() == 0


@pytest.mark.django_db
def test_an_address_saved_before_the_check_is_refused_at_send(settings):
    settings.OUTBOX_ALLOW_PRIVATE = False
    receiver = Receiver()
    try:
        message = services.webhook_enqueue(key="old", url=receiver.url, body={})
        services.message_deliver(message_id=message.pk)
    finally:
        receiver.close()
    message.refresh_from_db()
    assert receiver.calls == [] and message.status == Message.Status.FAILED
    assert "127.0.0.1 is a loopback address" in message.last_error


@pytest.mark.django_db
def test_the_call_goes_to_the_checked_address_with_the_name_as_host(settings, monkeypatch):
    """The connection uses the address that was checked, not a second lookup (DNS
    rebinding); the receiver still sees the URL's host name."""
    settings.OUTBOX_ALLOW_PRIVATE = True  # the stand-in for the far side is on 127.0.0.1
    receiver = Receiver()
    try:
        port = receiver.server.server_port
        asked = _resolving(monkeypatch, {"hooks.example.com": ["127.0.0.1"]})
        url = f"http://hooks.example.com:{port}/in?x=1"
        message = services.webhook_enqueue(key="pinned", url=url, body={"n": 1})
        services.message_deliver(message_id=message.pk)
    finally:
        receiver.close()
    message.refresh_from_db()
    assert message.status == Message.Status.SENT, message.last_error
    assert asked == ["hooks.example.com"]  # once
    assert receiver.calls[0]["headers"]["Host"] == f"hooks.example.com:{port}"
    assert receiver.calls[0]["path"] == "/in?x=1"


@pytest.mark.django_db
def test_redirects_are_not_followed(settings):
    settings.OUTBOX_ALLOW_PRIVATE = True
    receiver = Receiver(status=302)
    receiver.location = "http://169.254.169.254/latest/meta-data/"
    try:
        message = services.webhook_enqueue(key="moved", url=receiver.url, body={})
        services.message_deliver(message_id=message.pk)
    finally:
        receiver.close()
    message.refresh_from_db()
    assert len(receiver.calls) == 1 and message.status == Message.Status.PENDING
    assert "HTTP 302 (redirects are not followed)" in message.last_error


def test_slack_text_escapes_the_values_and_keeps_the_template_markup():
    text = slack.text(
        "New CTA: {title}\n<{url}|Open the CTA>",
        title="<!channel> Acme & Co <https://evil.example|click> {url}",
        url="https://cs.example/ctas/1/?a=1&b=2",
    )
    assert text == (
        "New CTA: &lt;!channel&gt; Acme &amp; Co &lt;https://evil.example|click&gt; {url}\n"
        "<https://cs.example/ctas/1/?a=1&amp;b=2|Open the CTA>"
    )
    assert slack.escape("&lt;") == "&amp;lt;"  # escaped once, as typed
