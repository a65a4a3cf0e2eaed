"""Print the demo users, their roles and the demo password."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.urls import reverse

from accounts import demo
from accounts.models import User
from config.site import absolute_url


class Command(BaseCommand):
    help = "Print the demo logins (created by seed_demo) and where to sign in."

    def handle(self, *args, **opts) -> None:
        emails = [u.email for u in demo.DEMO_USERS]
        users = {
            u.email: u
            for u in User.objects.filter(email__in=emails)
            .select_related("manager")
            .prefetch_related("groups")
        }
        if not users:
            self.stdout.write("No demo users yet: run `python manage.py seed_demo` first.")
            return
        # SITE_URL: the address of `make run` unless the installation sets its own
        self.stdout.write(f"Open {absolute_url(reverse('login'))} and sign in as one of:")
        for spec in demo.DEMO_USERS:
            user = users.get(spec.email)
            if user is None:
                continue
            role = user.role or "no role"
            reports_to = f" (reports to {user.manager.email})" if user.manager_id else ""
            self.stdout.write(f"  {role:<8} {user.email:<24}{reports_to}".rstrip())
        self.stdout.write(f"Password for all of them: {demo.DEMO_PASSWORD}")
