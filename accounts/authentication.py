"""API token authentication: ``Authorization: Bearer <token>`` (or ``Token <token>``), and
HTTP Basic with the token as user name, which is how Segment sends its write key."""

from __future__ import annotations

import base64

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from .models import ApiToken


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except ValueError:
                raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from None
            credentials = decoded.partition(":")[0]
        elif scheme not in self.keywords:
            return None
        if not credentials:
            raise exceptions.AuthenticationFailed("No token given.")
        try:
            token = ApiToken.objects.select_related("user").get(
                key_hash=ApiToken.hash_key(credentials)
            )
        except ApiToken.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token revoked.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive.")
        now = timezone.now()
        # one write a minute at most, not one per call
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class WritesNeedWriteScope(BasePermission):
    """Reads for anyone signed in; writes for a session or a write-scope token. Who may
    write what is the view's (or its service's) check: the CTA's owner, the account's CSM…"""

    message = "This token is read-only: writes need a token with write scope."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return not (
            isinstance(request.auth, ApiToken) and request.auth.scope != ApiToken.Scope.WRITE
        )
