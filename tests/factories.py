from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory

from accounts import models


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password("pw-for-tests-1")


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Account

    external_id = factory.Sequence(lambda n: f"ACC-{n:05d}")
    name = factory.Sequence(lambda n: f"Customer {n}")
    segment = "SMB"


class ContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Contract

    external_id = factory.Sequence(lambda n: f"CON-{n:05d}")
    account = factory.SubFactory(AccountFactory)
    start_date = dt.date(2024, 1, 1)
    mrr = Decimal("100.00")
    quantity = 10


class StakeholderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Stakeholder

    external_id = factory.Sequence(lambda n: f"STK-{n:05d}")
    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Person {n}")
    email = factory.Sequence(lambda n: f"person{n}@customer.example")
    role = models.StakeholderRole.USER


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Ticket

    external_id = factory.Sequence(lambda n: f"TCK-{n:05d}")
    account = factory.SubFactory(AccountFactory)
    subject = "Cannot export"
    opened_at = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Invoice

    external_id = factory.Sequence(lambda n: f"INV-{n:05d}")
    account = factory.SubFactory(AccountFactory)
    issued_on = dt.date(2024, 3, 1)
    due_on = dt.date(2024, 3, 31)
    amount = Decimal("1200.00")


def failed_invoice(account, day: dt.date, *, attempts: int = 2):
    """A $300 invoice issued 40 days before ``day``, due 10 days before it, its payment
    failed ``attempts`` times: overdue on ``day`` (the payments component's worst case)."""
    return InvoiceFactory(
        account=account,
        issued_on=day - dt.timedelta(days=40),
        due_on=day - dt.timedelta(days=10),
        amount=Decimal("300.00"),
        status="failed",
        failed_attempts=attempts,
    )


def health_model_with_rule(name: str, *, segment: str = "", lifecycle: str = ""):
    """A health model (no version yet) with one assignment rule for ``segment`` and/or
    ``lifecycle``, written directly as a fixture (no audit row)."""
    from metrics.models import HealthAssignmentRule, HealthModel

    model = HealthModel.objects.create(name=name)
    HealthAssignmentRule.objects.create(model=model, segment=segment, lifecycle=lifecycle)
    return model


def token_client(user, *, scope: str = "read"):
    """An API client that sends a new token of ``user`` with ``scope`` (read or write)."""
    from rest_framework.test import APIClient

    from accounts.models import ApiToken

    client = APIClient()
    _token, key = ApiToken.issue(user=user, name="tests", scope=scope)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client
