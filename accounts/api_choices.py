"""A wrong choice in an API body names the valid values, as a wrong choice in a query string
does (``accounts.filters.name_the_choices``): ``"bogus" is not a valid choice: open,
pending, closed.`` instead of DRF's ``"bogus" is not a valid choice.``

One field for every serializer of the API: ``ChoiceField`` where a serializer declares a
choice, and ``serializer_choice_field = ChoiceField`` on a ``ModelSerializer`` whose model
has choice fields (DRF builds those from the model). ``tests/accounts/test_api_choices.py``
checks every serializer of the project for a plain DRF choice field."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class ChoiceField(serializers.ChoiceField):
    """DRF's ChoiceField, whose invalid-choice error lists the values it accepts, in the
    order of its choices (a group's too), as the client types them."""

    default_error_messages = {"invalid_choice": '"{input}" is not a valid choice: {choices}.'}

    def fail(self, key: str, **kwargs: Any):
        if key == "invalid_choice":
            # read when failing, not when built: a field's choices may be set after __init__
            kwargs.setdefault("choices", ", ".join(self.choice_strings_to_values))
        return super().fail(key, **kwargs)


class ModelSerializer(serializers.ModelSerializer):
    """DRF's ModelSerializer whose fields built from the model's choices are ``ChoiceField``:
    the base of every model serializer of the API."""

    serializer_choice_field = ChoiceField
