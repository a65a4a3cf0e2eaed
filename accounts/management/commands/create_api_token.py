"""Issue an API token for a user and print its key once (only a hash is stored). Admins
without a shell do the same on Manage → API tokens; both call
``accounts.services.api_token_issue``."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken, User
from accounts.services import api_token_issue


class Command(BaseCommand):
    help = "Create an API token for a user; the key is printed once and cannot be shown again."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="email of the user the token acts as")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. 'Segment'")
        parser.add_argument(
            "--scope",
            choices=[s.value for s in ApiToken.Scope],
            default=ApiToken.Scope.READ,
            help=(
                "read: GET only (default, as on the web form); write: reads and writes what the "
                "user may write (an Admin: everything; others: CTAs and first-value days of "
                "the user's accounts, a Manager also KPI targets)."
            ),
        )

    def handle(self, *args, user: str, name: str, scope: str, **options):
        try:
            owner = User.objects.get(email__iexact=user.strip())
        except User.DoesNotExist:
            raise CommandError(f"no user with email {user!r}") from None
        try:
            token, key = api_token_issue(user=owner, name=name, scope=scope)
        except ValidationError as exc:
            raise CommandError(
                "; ".join(
                    f"--{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()
                )
            ) from None
        self.stderr.write(
            f"Token {token.name!r} ({scope}) for {owner.email}. "
            "Store the key now: it is not shown again."
        )
        self.stdout.write(key)
