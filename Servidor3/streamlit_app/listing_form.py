"""The Predict page's form, built from the inference API's own JSON schema of a listing.

Bounds, required fields, the status choices and the defaults (the schema's example listing, a
typical one) all come from the API, so this page repeats none of them and cannot drift from what
the API accepts. `problems` checks a listing against that schema before it is sent; the API still
has the last word, and its 422s are shown next to the same fields.
"""

from dataclasses import dataclass
from datetime import date
from typing import Any

import streamlit as st

# US states and territories as the listings spell them; a value not here can still be typed.
US_STATES = (
    "Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware",
    "District of Columbia", "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa",
    "Kansas", "Kentucky", "Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan", "Minnesota",
    "Mississippi", "Missouri", "Montana", "Nebraska", "Nevada", "New Hampshire", "New Jersey",
    "New Mexico", "New York", "North Carolina", "North Dakota", "Ohio", "Oklahoma", "Oregon",
    "Pennsylvania", "Puerto Rico", "Rhode Island", "South Carolina", "South Dakota", "Tennessee",
    "Texas", "Utah", "Vermont", "Virgin Islands", "Virginia", "Washington", "West Virginia",
    "Wisconsin", "Wyoming",
)  # fmt: skip
# The date picker needs a lower end; the API enforces its own earliest sale date.
EARLIEST_PICKABLE_DATE = date(1900, 1, 1)
# Steps of the number inputs: whole numbers for counts and ids, finer for the lot.
STEPS = {"acre_lot": 0.01, "house_size": 10.0}
ID_FIELDS = ("brokered_by", "street", "zip_code")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    spec: dict  # the JSON schema of the value, without its `null` alternative
    required: bool
    default: Any

    @property
    def kind(self) -> str:
        if "enum" in self.spec:
            return "choice"
        if self.spec.get("format") == "date":
            return "date"
        return str(self.spec["type"])  # number or string


def form_fields(schema: dict) -> list[Field]:
    example = schema.get("examples", [{}])[0]
    required = set(schema.get("required", ()))
    fields = []
    for name, prop in schema["properties"].items():
        alternatives = [option for option in prop.get("anyOf", [prop]) if option.get("type") != "null"]
        label = prop.get("description") or prop.get("title", name)
        fields.append(Field(name, label, alternatives[0], name in required, example.get(name)))
    return fields


def problems(listing: dict[str, Any], fields: list[Field]) -> dict[str, str]:
    """What the API would reject, field by field, in words a person can act on."""
    found = {}
    for field in fields:
        value, spec = listing.get(field.name), field.spec
        if value is None:
            if field.required:
                found[field.name] = "required"
            continue
        if isinstance(value, str):
            if len(value) < spec.get("minLength", 0):
                found[field.name] = f"at least {spec['minLength']} character(s)"
            elif "maxLength" in spec and len(value) > spec["maxLength"]:
                found[field.name] = f"at most {spec['maxLength']} characters"
            elif "enum" in spec and value not in spec["enum"]:
                found[field.name] = f"one of {', '.join(spec['enum'])}"
            continue
        for key, fails, words in (
            ("minimum", lambda bound, v: v < bound, "at least"),
            ("exclusiveMinimum", lambda bound, v: v <= bound, "more than"),
            ("maximum", lambda bound, v: v > bound, "at most"),
            ("exclusiveMaximum", lambda bound, v: v >= bound, "less than"),
        ):
            if key in spec and fails(spec[key], value):
                found[field.name] = f"must be {words} {spec[key]:g}, got {value:g}"
                break
    return found


def render(fields: list[Field]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The form's inputs in two columns, each with a slot under it for that field's error.

    Returns (listing as the API takes it, error slot per field). Call inside `st.form`."""
    listing, slots = {}, {}
    columns = st.columns(2)
    for position, field in enumerate(fields):
        with columns[position % 2]:
            listing[field.name] = _input(field)
            slots[field.name] = st.empty()
    return listing, slots


def _input(field: Field) -> Any:
    label = f"{field.label}{'' if field.required else ' (optional)'}"
    key = f"listing_{field.name}"
    if field.kind == "choice":
        options = field.spec["enum"]
        return st.selectbox(label, options, index=options.index(field.default), key=key)
    if field.name == "state":
        index = US_STATES.index(field.default) if field.default in US_STATES else None
        return st.selectbox(label, US_STATES, index=index, accept_new_options=True, key=key)
    if field.kind == "date":
        picked = st.date_input(
            label,
            value=date.fromisoformat(field.default) if field.default else None,
            min_value=EARLIEST_PICKABLE_DATE,
            max_value=date.today(),
            key=key,
        )
        return picked.isoformat() if picked else None
    if field.kind == "number":
        step = STEPS.get(field.name, 1.0)
        number_format = "%.0f" if field.name in ID_FIELDS else ("%.2f" if step < 1 else "%.1f")
        return st.number_input(label, value=field.default, step=step, format=number_format, key=key)
    return st.text_input(label, value=field.default or "", key=key) or None
