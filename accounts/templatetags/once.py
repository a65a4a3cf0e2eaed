"""``{% form_key %}``: the hidden input that makes a form's second send make nothing
(``accounts.once``). A new key each time the form is shown."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from accounts import once

register = template.Library()


@register.simple_tag
def form_key() -> str:
    return format_html('<input type="hidden" name="{}" value="{}">', once.FIELD, once.key_new())
