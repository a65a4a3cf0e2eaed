"""_field.html and _form_errors.html, the one place forms lay out their fields and errors: a
field with an error is marked invalid and described by its help and its error (by id), a choice
of several boxes is a fieldset described the same way, and the summary at the top lists every
error, a field's as a link to it."""

from __future__ import annotations

import re

from django import forms
from django.template.loader import render_to_string


class _Sample(forms.Form):
    name = forms.CharField(help_text="As customers know it.")
    note = forms.CharField(required=False)
    active = forms.BooleanField(help_text="Ticked: it runs.")
    days = forms.MultipleChoiceField(
        choices=[("mon", "Monday"), ("tue", "Tuesday")], widget=forms.CheckboxSelectMultiple
    )
    secret = forms.CharField(widget=forms.HiddenInput)

    def clean(self):
        raise forms.ValidationError("Two things disagree.")


def _tag(html: str, element: str, id_: str) -> str:
    found = re.search(rf'<{element}\b[^>]*\bid="{id_}"[^>]*>', html)
    assert found, f"no <{element} id={id_}>"
    return found.group(0)


def _fields(form) -> str:
    return "".join(render_to_string("_field.html", {"field": field}) for field in form)


def test_a_field_with_an_error_is_invalid_and_described_by_its_help_and_error():
    form = _Sample(data={"note": "ok"})
    html = _fields(form)

    name = _tag(html, "input", "id_name")
    assert 'aria-invalid="true"' in name
    assert 'aria-describedby="id_name_helptext id_name_error"' in name
    assert 'id="id_name_helptext">As customers know it.</p>' in html
    assert re.search(r'<ul class="field-error" id="id_name_error"><li>This field is required', html)

    # a single checkbox: the box before its label, described the same way
    active = _tag(html, "input", "id_active")
    assert 'aria-invalid="true"' in active
    assert 'aria-describedby="id_active_helptext id_active_error"' in active
    assert '<label for="id_active">' in html

    # several boxes: a fieldset named by its legend carries the description, each box is invalid
    fieldset = re.search(r'<fieldset class="checks"[^>]*>\s*<legend[^>]*>Days</legend>', html)
    assert fieldset and 'aria-describedby="id_days_error"' in fieldset.group(0)
    assert 'aria-invalid="true"' in _tag(html, "input", "id_days_0")
    assert 'for="id_days"' not in html  # no label pointing at the boxes' wrapper

    # a field without an error says nothing of the kind
    note = _tag(html, "input", "id_note")
    assert "aria-invalid" not in note and "aria-describedby" not in note


def test_a_valid_field_is_described_by_its_help_only():
    form = _Sample(data={"name": "Acme", "active": "on", "days": ["mon"], "secret": "x"})
    form.is_valid()
    name = _tag(_fields(form), "input", "id_name")
    assert "aria-invalid" not in name
    assert 'aria-describedby="id_name_helptext"' in name


def test_the_summary_lists_every_error_and_links_each_field_error_to_its_field():
    form = _Sample(data={"note": "ok"})
    html = render_to_string(
        "_form_errors.html", {"form": form, "failed": "The sample was not saved"}
    )
    summary = re.search(r"<div [^>]*data-error-summary[^>]*>", html)
    assert summary and 'role="alert"' in summary.group(0) and 'tabindex="-1"' in summary.group(0)
    assert "<p>The sample was not saved:</p>" in html
    assert "<li>Two things disagree.</li>" in html
    assert "<li>Secret: This field is required.</li>" in html  # hidden: no field to go to
    assert '<li><a href="#id_name">Name</a>: This field is required.</li>' in html
    assert (
        '<li><a href="#id_days_0">Days</a>: This field is required.</li>' in html
    )  # its first box


def test_no_summary_without_errors():
    assert render_to_string("_form_errors.html", {"form": _Sample()}).strip() == ""
