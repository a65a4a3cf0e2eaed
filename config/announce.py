"""What an htmx action did, said to screen readers: one polite live region on every page
(``#announcer`` in base.html) that app.js fills from the ``announced`` event. A message
written into the swapped fragment is not enough: a live region is heard only when it was on
the page before its text changed, and the fragment may be gone a moment later (the queue
re-reads itself after a CTA action and wipes the row's "Step 2 done")."""

from __future__ import annotations

from django.http import HttpResponse
from django_htmx.http import trigger_client_event


def announce(response: HttpResponse, message: str) -> HttpResponse:
    """``response`` with an ``announced`` {message} event (HX-Trigger, merged with the events
    it sends already): the page's live region reads ``message`` out once."""
    return trigger_client_event(response, "announced", {"message": message})
