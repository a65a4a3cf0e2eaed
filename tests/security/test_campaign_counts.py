"""The survey campaigns page is for every role, over the accounts each may see: its
delivered and answered counts are those of the user's accounts, not the whole company's."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from accounts.models import Account, Stakeholder
from surveys.models import Invitation

pytestmark = pytest.mark.django_db

SENT = dt.datetime(2024, 1, 5, tzinfo=dt.UTC)


def _counts(client, user, campaign) -> tuple[int, int]:
    client.force_login(user)
    response = client.get(reverse("surveys:campaign-list"))
    assert response.status_code == 200
    row = next(c for c in response.context["campaigns"] if c.pk == campaign.pk)
    return row.delivered, row.responded


def test_each_role_counts_the_invitations_of_the_accounts_it_sees(client, world):
    objects, users = world
    campaign = objects["campaign"]
    Invitation.objects.filter(pk=objects["invitation"].pk).update(sent_at=SENT)  # the CSM's
    elsewhere = Account.objects.create(external_id="B-1", name="Globex")  # nobody's book
    for n in range(3):
        person = Stakeholder.objects.create(
            account=elsewhere, external_id=f"S-{n}", email=f"p{n}@globex.example"
        )
        Invitation.objects.create(
            campaign=campaign, stakeholder=person, account=elsewhere, email=person.email,
            token=f"{n}" * 43, expires_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC),
            sent_at=SENT, responded_at=SENT,
        )  # fmt: skip
    assert _counts(client, users["csm"], campaign) == (1, 0)
    assert _counts(client, users["manager"], campaign) == (1, 0)  # the CSM reports to them
    assert _counts(client, users["admin"], campaign) == (4, 3)
