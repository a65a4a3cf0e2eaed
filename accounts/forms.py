"""HTML forms: parse and check input, nothing else (writes live in services and views)."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.core.files.uploadedfile import UploadedFile

from . import intake

SUFFIXES = (".csv.gz", ".csv")


@dataclass(frozen=True)
class UploadPart:
    """One uploaded file and the kind of data it holds."""

    kind: str
    file: UploadedFile


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that takes several files (Django's documented recipe)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if not data:
            return single(None, initial)  # "This field is required."
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class ImportUploadForm(forms.Form):
    files = MultipleFileField(
        label="CSV files",
        widget=MultipleFileInput(attrs={"accept": ".csv,.gz,text/csv,application/gzip"}),
    )
    kind = forms.ChoiceField(
        label="Kind of data",
        required=False,
        choices=[("", "From the file name")] + [(k, k.capitalize()) for k in intake.kinds()],
        help_text="Choose a kind when a single file is not named after its kind.",
    )
    dry_run = forms.BooleanField(
        label="Validate only (dry run)",
        required=False,
        help_text="Check every row and count what would change; write nothing.",
    )
    ignore_unknown = forms.BooleanField(
        label="Ignore unknown columns",
        required=False,
        help_text="Otherwise a column the product does not know is an error.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # every kind the intake takes, with those other apps register (responses.csv)
        names = ", ".join(f"{kind}.csv" for kind in intake.kinds())
        help_text = f"{names} — or the same names ending in .csv.gz. Several files are one import."
        self.fields["files"].help_text = help_text

    def clean(self) -> dict:
        data = super().clean()
        files: list[UploadedFile] = data.get("files") or []
        chosen = data.get("kind") or ""
        if not files:
            return data
        if chosen and len(files) > 1:
            raise forms.ValidationError(
                "With several files, leave the kind on “From the file name” and name each "
                "file after its kind (accounts.csv, contracts.csv …)."
            )
        parts: list[UploadPart] = []
        problems: list[str] = []
        for f in files:
            name = f.name or ""
            if not name.lower().endswith(SUFFIXES):
                problems.append(f"{name}: not a .csv or .csv.gz file.")
                continue
            kind = chosen or intake.kind_from_name(name)
            if kind is None:
                problems.append(
                    f"{name}: cannot tell the kind of data from the name; name it "
                    f"{', '.join(k + '.csv' for k in intake.kinds())}, or choose a kind."
                )
                continue
            parts.append(UploadPart(kind=kind, file=f))
        kinds = [p.kind for p in parts]
        for kind in intake.kinds():
            if kinds.count(kind) > 1:
                problems.append(f"Two files hold {kind}: upload one file per kind.")
        if problems:
            raise forms.ValidationError(problems)
        parts.sort(key=lambda p: intake.kinds().index(p.kind))  # dependency order
        data["parts"] = parts
        return data
