"""Forms of the health model screens: the editor's draft (components, measures and their
mappings as form fields, read back into the JSON ``metrics.health.parse_model`` checks) and
the assignment rules.

The draft keeps every value as typed, so a page with errors shows the input again; the
checks are ``parse_model``'s (``health.model_errors``), each error shown at its field and,
in words that name the component and measure, in a list at the top. Field names:

    c-<i>-key (hidden), c-<i>-label, c-<i>-weight, c-<i>-locked
    c-<i>-m-<j>-measure, c-<i>-m-<j>-kind ("linear" | "thresholds")
    c-<i>-m-<j>-lo, c-<i>-m-<j>-hi                        (linear: values at 0 and 100 points)
    c-<i>-m-<j>-t-<k>-at, c-<i>-m-<j>-t-<k>-points         (threshold rows)
    green_min, yellow_min, based_on (the version the draft started from)

Buttons post ``op``: add-c, remove-c-<i>, add-m-<i>, remove-m-<i>-<j>, add-t-<i>-<j>,
remove-t-<i>-<j>-<k> change the draft (nothing saved); save saves it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms

from accounts.models import AccountLifecycle
from metrics import health
from metrics.models import HealthAssignmentRule, HealthModel, HealthModelVersion

MAX_COMPONENTS = 20
MAX_MEASURES = 10
MAX_ROWS = 20
KINDS = ("linear", "thresholds")


def number_text(value: Any) -> str:
    """A stored number as the form shows it: 35.0 → "35", 0.5 → "0.5"."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _value(raw: str) -> Any:
    """A typed number for the JSON; blank → None, anything else that is not a finite
    number stays text, so that ``parse_model`` names it ("must be a number, got “ten”")."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        number = float(raw)
    except ValueError:
        return raw
    return number if math.isfinite(number) else raw


@dataclass
class RowDraft:
    """One threshold row: from ``at`` on, ``points``."""

    at: str = ""
    points: str = ""
    errors: list[str] = field(default_factory=list)
    autofocus: bool = False  # just added: the page focuses it

    @property
    def blank(self) -> bool:
        return not self.at.strip() and not self.points.strip()


@dataclass
class MeasureDraft:
    measure: str = ""
    kind: str = "linear"
    lo: str = ""
    hi: str = ""
    rows: list[RowDraft] = field(default_factory=list)
    # by slot: general (the measure as a whole), measure, lo, hi, linear, thresholds
    errors: dict[str, list[str]] = field(default_factory=dict)
    autofocus: bool = False
    add_autofocus: bool = False  # its last row was removed: the page focuses "Add a row"

    @property
    def info(self) -> health.Measure | None:
        return health.MEASURES.get(self.measure)


@dataclass
class ComponentDraft:
    key: str = ""
    label: str = ""
    weight: str = ""
    locked: bool = False
    measures: list[MeasureDraft] = field(default_factory=list)
    # by slot: general (the component as a whole), label, weight, locked, measures
    errors: dict[str, list[str]] = field(default_factory=dict)
    autofocus: bool = False
    add_autofocus: bool = False  # its last measure was removed: "Add a measure" is focused

    @property
    def name(self) -> str:
        """How the editor's announcements name it: “Usage”, or "" while it has no name."""
        return f"“{self.label.strip()}”" if self.label.strip() else ""


def _blank_measure() -> MeasureDraft:
    return MeasureDraft(rows=[RowDraft()])


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40]


class ModelDraft:
    """The editor's draft of a health model version (see the module docstring)."""

    def __init__(
        self,
        components: list[ComponentDraft],
        *,
        green_min: str,
        yellow_min: str,
        based_on: int,
    ) -> None:
        self.components = components
        self.green_min = green_min
        self.yellow_min = yellow_min
        self.based_on = based_on
        # by slot: components (the list), green_min, yellow_min, __all__
        self.errors: dict[str, list[str]] = {}
        self.summary: list[tuple[str, str]] = []  # (field id, words), in page order
        self.spec: health.ModelSpec | None = None
        self.add_autofocus = False  # the last component was removed: "Add a component"
        self._rows_at: dict[tuple[int, int], list[int]] = {}  # JSON row → form row

    # --- reading --------------------------------------------------------------------------

    @classmethod
    def from_version(cls, version: HealthModelVersion) -> ModelDraft:
        components = []
        for c in version.components:
            measures = []
            for m in c.get("measures", []):
                if "linear" in m:
                    lo, hi = m["linear"]
                    draft = MeasureDraft(
                        m["measure"], "linear", number_text(lo), number_text(hi), [RowDraft()]
                    )
                else:
                    rows = [RowDraft(number_text(a), number_text(p)) for a, p in m["thresholds"]]
                    draft = MeasureDraft(m["measure"], "thresholds", rows=rows)
                measures.append(draft)
            components.append(
                ComponentDraft(
                    key=c["key"],
                    label=c.get("label") or c["key"],
                    weight=number_text(c.get("weight")),
                    locked=bool(c.get("locked")),
                    measures=measures,
                )
            )
        return cls(
            components,
            green_min=number_text(version.green_min),
            yellow_min=number_text(version.yellow_min),
            based_on=version.version,
        )

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, based_on: int) -> ModelDraft:
        """The draft as posted. ``based_on``: the version to assume when the form does not
        say (a form without ``based_on`` is treated as based on the version in force)."""

        def text(name: str) -> str:
            return str(data.get(name) or "")[:100]

        def indexes(pattern: str, limit: int) -> tuple[list[int], bool]:
            found = sorted({int(m.group(1)) for k in data if (m := re.fullmatch(pattern, k))})
            return found[:limit], len(found) > limit

        too_many = []
        comp_at, over = indexes(r"c-(\d+)-(?:key|label|weight|locked|m-.*)", MAX_COMPONENTS)
        if over:
            too_many.append(f"at most {MAX_COMPONENTS} components")
        components = []
        for i in comp_at:
            p = f"c-{i}-"
            measures = []
            measure_at, over = indexes(rf"c-{i}-m-(\d+)-.*", MAX_MEASURES)
            if over:
                too_many.append(f"at most {MAX_MEASURES} measures in a component")
            for j in measure_at:
                q = f"{p}m-{j}-"
                row_at, over = indexes(rf"c-{i}-m-{j}-t-(\d+)-(?:at|points)", MAX_ROWS)
                if over:
                    too_many.append(f"at most {MAX_ROWS} threshold rows in a measure")
                rows = [RowDraft(text(f"{q}t-{k}-at"), text(f"{q}t-{k}-points")) for k in row_at]
                measures.append(
                    MeasureDraft(
                        measure=text(f"{q}measure"),
                        kind=text(f"{q}kind"),
                        lo=text(f"{q}lo"),
                        hi=text(f"{q}hi"),
                        rows=rows or [RowDraft()],
                    )
                )
            components.append(
                ComponentDraft(
                    key=text(f"{p}key"),
                    label=text(f"{p}label"),
                    weight=text(f"{p}weight"),
                    locked=data.get(f"{p}locked") in ("on", "true", "1"),
                    measures=measures,
                )
            )
        raw_base = text("based_on")
        draft = cls(
            components,
            green_min=text("green_min"),
            yellow_min=text("yellow_min"),
            based_on=int(raw_base) if raw_base.isdigit() else based_on,
        )
        if too_many:
            draft.errors["__all__"] = [f"The form has too many rows ({', '.join(too_many)})."]
        return draft

    def as_data(self) -> dict[str, str]:
        """The draft as the form posts it (``from_data``'s input): for tests and scripts."""
        data = {
            "based_on": str(self.based_on),
            "green_min": self.green_min,
            "yellow_min": self.yellow_min,
        }
        for i, c in enumerate(self.components):
            p = f"c-{i}-"
            data.update({f"{p}key": c.key, f"{p}label": c.label, f"{p}weight": c.weight})
            if c.locked:
                data[f"{p}locked"] = "on"
            for j, m in enumerate(c.measures):
                q = f"{p}m-{j}-"
                data.update({f"{q}measure": m.measure, f"{q}kind": m.kind})
                data.update({f"{q}lo": m.lo, f"{q}hi": m.hi})
                for k, row in enumerate(m.rows):
                    data.update({f"{q}t-{k}-at": row.at, f"{q}t-{k}-points": row.points})
        return data

    # --- changing -------------------------------------------------------------------------

    def apply(self, op: str) -> str:
        """Add or remove a component, a measure or a threshold row (``op``, see the module
        docstring) and say what was done, in words for the page's live region ("Component 7
        added.", "Component “Support” removed; 5 left."); an op that names nothing in the
        draft changes nothing and says "". The focus follows the change (``autofocus``):
        what was added; after a removal, the part that took the removed one's place, else
        (the last one went) the button that adds one."""
        numbers = [int(n) for n in re.findall(r"\d+", op)]
        name = re.sub(r"-\d+", "", op)
        comps = self.components
        try:
            if name == "add-c":
                if len(comps) >= MAX_COMPONENTS:
                    return f"Not added: a model has at most {MAX_COMPONENTS} components."
                comps.append(ComponentDraft(weight="10", measures=[_blank_measure()]))
                comps[-1].autofocus = True
                return f"Component {len(comps)} added."
            if name == "remove-c":
                i = numbers[0]
                gone = comps.pop(i)
                if i < len(comps):
                    comps[i].autofocus = True
                else:
                    self.add_autofocus = True
                left = f"{len(comps)} left" if comps else "none left"
                return f"Component {gone.name or i + 1} removed; {left}."
            comp = comps[numbers[0]]
            of = comp.name or f"component {numbers[0] + 1}"
            if name == "add-m":
                if len(comp.measures) >= MAX_MEASURES:
                    return f"Not added: a component has at most {MAX_MEASURES} measures."
                comp.measures.append(_blank_measure())
                comp.measures[-1].autofocus = True
                return f"Measure {len(comp.measures)} added to {of}."
            measure = comp.measures[numbers[1]]
            if name == "remove-m":
                j = numbers[1]
                del comp.measures[j]
                if j < len(comp.measures):
                    comp.measures[j].autofocus = True
                else:
                    comp.add_autofocus = True
                return f"Measure {j + 1} of {of} removed."
            where = f"measure {numbers[1] + 1} of {of}"
            rows = measure.rows
            if name == "add-t":
                if len(rows) >= MAX_ROWS:
                    return f"Not added: a measure has at most {MAX_ROWS} threshold rows."
                rows.append(RowDraft(autofocus=True))
                return f"Row {len(rows)} added to {where}."
            if name == "remove-t":
                k = numbers[2]
                del rows[k]
                if not rows:
                    rows.append(RowDraft())  # a measure shows one row, blank
                if k < len(rows):
                    rows[k].autofocus = True
                else:
                    measure.add_autofocus = True
                return f"Row {k + 1} of {where} removed."
        except IndexError:
            pass
        return ""

    # --- checking -------------------------------------------------------------------------

    def _keys(self) -> list[str]:
        """Each component's key: its own, or for a new one a slug of its name, unique."""
        taken = {c.key for c in self.components if c.key}
        keys = []
        for c in self.components:
            key = c.key
            if not key:
                base = _slug(c.label)
                key = base
                n = 2
                while base and key in taken:
                    key = f"{base}_{n}"
                    n += 1
                taken.add(key)
            keys.append(key)
        return keys

    def as_json(self) -> list[dict[str, Any]]:
        """The components as ``parse_model`` reads them (blank threshold rows left out)."""
        out = []
        self._rows_at = {}
        for i, (c, key) in enumerate(zip(self.components, self._keys(), strict=True)):
            measures = []
            for j, m in enumerate(c.measures):
                mapping: dict[str, Any] = {"measure": m.measure}
                if m.kind == "linear":
                    mapping["linear"] = [_value(m.lo), _value(m.hi)]
                elif m.kind == "thresholds":
                    kept = [k for k, row in enumerate(m.rows) if not row.blank]
                    self._rows_at[(i, j)] = kept
                    mapping["thresholds"] = [
                        [_value(m.rows[k].at), _value(m.rows[k].points)] for k in kept
                    ]
                measures.append(mapping)
            out.append(
                {
                    "key": key,
                    "label": c.label.strip(),
                    "weight": _value(c.weight),
                    "locked": c.locked,
                    "measures": measures,
                }
            )
        return out

    def is_valid(self) -> bool:
        """Check the draft with ``health.model_errors``; sets ``spec`` when it passes, else
        puts each error at its field and in ``summary``."""
        self.summary = []
        components = self.as_json()
        # one name per component (``health.duplicate_names``, the rule of saving a version),
        # by the names typed here only: an unnamed component is told to get one instead
        twin_of = {
            i: (first, name)
            for first, i, name in health.duplicate_names(
                [{"label": c.label} for c in self.components]
            )
        }
        for i, c in enumerate(self.components):  # a name is needed before anything else
            if not c.label.strip():
                c.errors.setdefault("label", []).append("give the component a name")
                self.summary.append((f"c-{i}-label", f"component {i + 1}: give it a name"))
            elif i in twin_of:
                first, name = twin_of[i]
                problem = f"component {first + 1} is named “{name}” too: give each its own name"
                c.errors.setdefault("label", []).append(problem)
                self.summary.append((f"c-{i}-label", f"component {i + 1}: {problem}"))
        spec, errors = health.model_errors(
            components, green_min=_value(self.green_min), yellow_min=_value(self.yellow_min)
        )
        for error in errors:
            self._place(error)
        if self.errors.get("__all__"):
            self.summary.insert(0, ("", self.errors["__all__"][0]))
        self.spec = spec if not self.summary else None
        return self.spec is not None

    def _place(self, error: health.HealthConfigError) -> None:
        """Put ``error`` at the field its path names (and its words in the summary)."""
        path = error.path
        problem = error.problem
        anchor = ""
        if not path or path[0] != "components" or len(path) == 1:
            slot = path[0] if path and path[0] in ("green_min", "yellow_min") else "components"
            self.errors.setdefault(slot, []).append(problem)
            anchor = slot if slot != "components" else "components-end"
        else:
            i = path[1]
            comp = self.components[i]
            rest = path[2:]
            if not rest or rest[0] in ("key", "label", "weight", "locked"):
                slot = {"key": "label"}.get(rest[0], rest[0]) if rest else "general"
                if slot == "label" and comp.errors.get("label"):
                    return  # "give it a name" says it already
                comp.errors.setdefault(slot, []).append(problem)
                anchor = f"c-{i}-{slot}" if rest else f"c-{i}"
            elif rest == ("measures",):
                comp.errors.setdefault("measures", []).append(problem)
                anchor = f"c-{i}-add-m"
            else:
                j = rest[1]
                measure = comp.measures[j]
                at = rest[2:]
                base = f"c-{i}-m-{j}"
                if not at:
                    measure.errors.setdefault("general", []).append(problem)
                    anchor = base
                elif at[0] == "measure":
                    measure.errors.setdefault("measure", []).append(problem)
                    anchor = f"{base}-measure"
                elif at[0] == "linear":
                    slot = {(): "linear", (0,): "lo", (1,): "hi"}.get(tuple(at[1:]), "linear")
                    measure.errors.setdefault(slot, []).append(problem)
                    anchor = f"{base}-{'lo' if slot == 'linear' else slot}"
                elif len(at) == 1:  # the thresholds as a whole
                    measure.errors.setdefault("thresholds", []).append(problem)
                    anchor = f"{base}-t-0-at"
                else:
                    kept = self._rows_at.get((i, j), [])
                    k = kept[at[1]] if at[1] < len(kept) else 0
                    measure.rows[k].errors.append(problem)
                    part = "points" if at[2:] == (1,) else "at"
                    anchor = f"{base}-t-{k}-{part}"
        self.summary.append((anchor, error.words))

    def add_errors(self, messages: list[str]) -> None:
        """Errors that belong to no field (from the service: a newer version, no change)."""
        self.errors.setdefault("__all__", []).extend(messages)
        self.summary = [("", m) for m in messages] + self.summary


# the editor's choice of measure: its label and unit
MEASURE_CHOICES = [
    (m.key, f"{m.label} ({m.unit})" if m.unit else m.label) for m in health.MEASURES.values()
]


# --- assignment rules ----------------------------------------------------------------------


class RuleForm(forms.Form):
    """One assignment rule as posted: segment and/or lifecycle stage → model. ``rule``:
    the rule's id when changing one (blank for a new rule). The checks that depend on the
    other rules (a duplicate, a segment spelled differently) are the service's
    (``metrics.services.health_rule_add`` / ``health_rule_change``)."""

    rule = forms.IntegerField(required=False, widget=forms.HiddenInput)
    segment = forms.CharField(required=False, max_length=100)
    lifecycle = forms.CharField(required=False, max_length=20)
    model = forms.CharField(required=False)

    def clean_lifecycle(self) -> str:
        value = self.cleaned_data["lifecycle"].strip()
        if value and value not in AccountLifecycle.values:
            stages = ", ".join(AccountLifecycle.labels)
            raise forms.ValidationError(
                f"unknown lifecycle stage “{value}”; the stages are: {stages}"
            )
        return value

    def clean_model(self) -> HealthModel:
        return _posted_model(self.cleaned_data["model"])

    def clean_rule(self) -> HealthAssignmentRule | None:
        pk = self.cleaned_data["rule"]
        if pk is None:
            return None
        rule = HealthAssignmentRule.objects.filter(pk=pk).first()
        if rule is None:
            raise forms.ValidationError("this rule does not exist any more: reload the page")
        return rule


class DefaultForm(forms.Form):
    """The model that scores every account no rule matches."""

    model = forms.CharField(required=False)

    def clean_model(self) -> HealthModel:
        return _posted_model(self.cleaned_data["model"])


def _posted_model(raw: str) -> HealthModel:
    raw = raw.strip()
    if not raw:
        raise forms.ValidationError("choose the model that scores these accounts")
    model = HealthModel.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
    if model is None:
        raise forms.ValidationError(f"there is no model “{raw[:40]}”: reload the page")
    return model


class ModelCopyForm(forms.Form):
    """A new model, applying to no account yet, as a copy of an existing one."""

    name = forms.CharField(max_length=100, required=False)
    source = forms.CharField(required=False)

    def clean_source(self) -> HealthModel:
        raw = self.cleaned_data["source"].strip()
        model = HealthModel.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
        if model is None:
            raise forms.ValidationError("choose the model to copy")
        return model
