"""``{% form_key %}``: the hidden input that makes a form's second send make nothing
(``accounts.once``). A new key each time the form is shown; ``{% form_key form %}`` keeps
the key a refused form was sent with (nothing was claimed), so a fixed form sent twice is
still one."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from accounts import once

register = template.Library()


@register.simple_tag
def form_key(form=None) -> str:
    sent = once.key_of(form.data) if form is not None and form.is_bound and form.errors else ""
    key = sent or once.key_new()
    return format_html('<input type="hidden" name="{}" value="{}">', once.FIELD, key)
