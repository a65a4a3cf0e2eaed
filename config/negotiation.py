"""The API's content negotiation: DRF's, except that a ``?format=`` naming no renderer of the
view is ignored instead of answered with a 404 (no operation documents a 404 for it, and the
lists and KPI endpoints, which refuse parameters they do not take, take ``format``); one that
names a renderer still picks it (``/api/schema/?format=json``)."""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation


class IgnoreUnknownFormat(DefaultContentNegotiation):
    def filter_renderers(self, renderers, format):
        named = [renderer for renderer in renderers if renderer.format == format]
        return named or list(renderers)
