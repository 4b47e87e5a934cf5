"""The fitter's form data as a request: what was typed kept as typed, each error beside its
field in words a fitter understands, then the same validation as the API's."""

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _

from service.core.columns import nest
from service.core.errors import InvalidInput
from service.core.fields import BY_PATH, MAX_EFFECTIVE_DROP, Field
from service.core.schema import load_request
from service.web.questions import ASKED

YES, NO = "yes", "no"


def number(text: str) -> float | None:
    """A typed number (a decimal comma accepted); None when it is none, or not finite."""
    try:
        value = float(text.replace(",", "."))  # a decimal comma is how many people type
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def explain(f: Field) -> str:
    """What a field accepts, as a fitter would be told."""
    if f.path == "person.age_years":  # outside it, the customer is not one heeldrop advises
        return _("heeldrop advises people aged %(lo)g to %(hi)g: enter the age in years.",
                 lo=f.lo, hi=f.hi)  # fmt: skip
    if f.kind in ("number", "count", "severity"):
        whole = _("a whole number") if f.kind != "number" else _("a number")
        return _("Enter %(what)s from %(lo)g to %(hi)g.", what=whole, lo=f.lo, hi=f.hi)
    if f.kind == "bool":
        return _("Choose yes or no.")
    if f.kind == "enum":
        return _("Choose one of the options.")
    return _("At most %(n)d characters.", n=int(f.hi))


def read(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The request of a submitted form, and errors by field path (empty when it is valid)."""
    flat: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for question in ASKED:
        f, text = question.field, (form.get(question.path) or "").strip()
        if not text:
            continue
        if f.kind in ("number", "count", "severity"):
            value = number(text)
            if value is None or not f.lo <= value <= f.hi:
                errors[f.path] = explain(f)
                continue
            flat[f.path] = int(value) if value.is_integer() else value
        elif f.kind == "bool":
            if text not in (YES, NO):
                errors[f.path] = explain(f)
                continue
            flat[f.path] = text == YES
        elif f.kind == "enum" and text not in f.choices:
            errors[f.path] = explain(f)
        else:
            flat[f.path] = text
    if "footwear.current_drop_mm" not in flat and "footwear.current_drop_mm" not in errors:
        errors["footwear.current_drop_mm"] = _("The shoe's drop is needed: it is on the box.")
    if errors:
        return {}, _in_form_order(errors)
    try:
        return load_request(nest(flat)), {}
    except InvalidInput as exc:
        for path in exc.errors:
            if path == "footwear.heel_insert_mm":
                errors[path] = _(
                    "Shoe and insert together come to more than %(max)g mm: check both.",
                    max=MAX_EFFECTIVE_DROP,
                )
            else:
                errors[path] = explain(BY_PATH[path]) if path in BY_PATH else _("Check this.")
        return {}, _in_form_order(errors)


_FORM_ORDER = {q.path: k for k, q in enumerate(ASKED)}


def _in_form_order(errors: dict[str, str]) -> dict[str, str]:
    """Errors in the order their questions come on the form (the list at the top reads so)."""
    return dict(sorted(errors.items(), key=lambda item: _FORM_ORDER.get(item[0], len(ASKED))))
