"""The fitter's pages: sign in and out, the form, the answer (and its print view), follow-up."""

from collections.abc import Callable
from datetime import date, timedelta
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from werkzeug.exceptions import TooManyRequests

from service.api.metrics import count_outcome
from service.api.recommendations import answer
from service.api.schemas import OUTCOMES, SYMPTOMS_AFTER, OutcomeSchema
from service.core.fields import BAND_MM, BANDS, BY_PATH
from service.core.schema import effective_drop
from service.db import Unavailable, users
from service.db.log import DuplicateOutcome, UnknownRequest
from service.web.form import explain, number, read
from service.web.questions import LABELS, OPTIONS, SECTIONS

RULER_MM = 30


def _engine() -> Any:
    return current_app.extensions["heeldrop.log"].engine


def staff_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pages for a signed-in, active staff user; others go to sign in."""

    @wraps(view)
    def inner(*args: Any, **kwargs: Any) -> Any:
        staff = users.active(_engine(), session.get("user_id", -1))
        if staff is None:
            session.clear()
            return redirect(url_for("fit.sign_in", next=request.path))
        g.staff = staff
        g.tenant = staff.tenant
        if request.method == "POST":  # what answers or records: a key's budget, per user
            g.rate_window = window = current_app.extensions["heeldrop.limits"].staff(staff.id)
            if not window.allowed:
                raise TooManyRequests()
        return view(*args, **kwargs)

    return inner


def sign_in() -> Any:
    form = FlaskForm()
    failed = False
    if form.validate_on_submit():
        staff = users.sign_in(_engine(), request.form.get("name", ""),
                              request.form.get("password", ""))  # fmt: skip
        if staff is not None:
            session.clear()
            session.permanent = True
            session["user_id"] = staff.id
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/fit") else url_for("fit.form"))
        failed = True
    status = 400 if request.method == "POST" else 200
    return render_template("sign_in.html", form=form, failed=failed), status


@staff_only
def sign_out() -> Any:
    if FlaskForm().validate_on_submit():
        session.clear()
        return redirect(url_for("fit.sign_in"))
    abort(400)


def _ruler(rec: dict[str, Any], current: float) -> dict[str, Any]:
    """Positions (in mm of a 0-30 ruler) for the drop ruler's bands, range and current drop."""
    return {
        # each band over its whole millimetres: a mark at 10 sits inside 7-10, one at 11 outside
        "bands": [(band, BAND_MM[band][0] - 0.5, BAND_MM[band][1] + 0.5) for band in BANDS],
        "lo": rec["drop_mm"]["min"], "hi": rec["drop_mm"]["max"],
        "current": min(current, RULER_MM), "max": RULER_MM,
    }  # fmt: skip


def _referring() -> set[str]:
    """The ids of the rules that refer: a referral sets every other rule aside."""
    return {r.id for r in current_app.extensions["heeldrop"].recommender.rules if r.referral}


def _timeline(plan: list[dict[str, Any]], start: date) -> list[dict[str, Any]]:
    steps, day = [], start
    for step in plan:
        steps.append({**step, "from": day})
        day += timedelta(weeks=step["weeks"])
    return steps


@staff_only
def form() -> Any:
    page = FlaskForm()
    typed = request.form if request.method == "POST" else {}
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not page.validate_on_submit():
            abort(400)
        data, errors = read(request.form)
        if not errors:
            given = answer([data], [g.answer_id], g.tenant)[0]
            current = effective_drop(data["footwear"])
            today = date.today()
            rec = given["recommendation"]
            return render_template(
                "answer.html", answer=given, rec=rec, ruler=_ruler(rec, current),
                timeline=_timeline(rec["transition_plan"], today), today=today,
                insert=bool(data["footwear"].get("heel_insert_mm")), referral_rules=_referring(),
                follow_up=today + timedelta(weeks=rec["follow_up"]["retest_weeks"]),
                client_ref=data.get("client_ref"), form=FlaskForm(),
            )  # fmt: skip
    status = 422 if errors else 200
    return render_template("fit.html", sections=SECTIONS, typed=typed, errors=errors,
                           options=OPTIONS, labels=LABELS, form=page), status  # fmt: skip


@staff_only
def follow_up(request_id: str) -> Any:
    book = current_app.extensions["heeldrop.log"]
    given = book.given(g.tenant, request_id)
    if given is None:
        abort(404)
    page = FlaskForm()
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not page.validate_on_submit():
            abort(400)
        report, errors = _report(request_id, request.form)
        if not errors:
            try:
                book.record_outcome(g.tenant, report)
            except UnknownRequest:
                abort(404)
            except DuplicateOutcome:
                errors["weeks_worn"] = _("A follow-up after this many weeks is already recorded.")
            else:
                count_outcome(report["outcome"])
                return render_template("recorded.html", report=report, form=FlaskForm())
    return render_template(
        "follow_up.html", request_id=request_id, typed=request.form, errors=errors, form=page,
        outcomes=OUTCOMES, symptoms=SYMPTOMS_AFTER, given=given, then=_then(given["request"]),
        labels={name: LABELS[f"symptoms.{name}"] for name in SYMPTOMS_AFTER},
    ), (422 if errors else 200)  # fmt: skip


def _then(request: dict[str, Any]) -> dict[str, Any]:
    """From a logged request: the effective drop and the symptoms (0-10) it gave."""
    symptoms = request.get("symptoms", {})
    scores = {name: symptoms[name] for name in SYMPTOMS_AFTER if symptoms.get(name) is not None}
    return {"drop": effective_drop(request.get("footwear", {})), "symptoms": scores}


def _report(request_id: str, typed: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """An outcome report from the follow-up form, validated as POST /v1/outcomes is; every
    problem at once, each in a fitter's words."""
    body: dict[str, Any] = {"request_id": request_id}
    if typed.get("outcome"):
        body["outcome"] = typed["outcome"]
    for name in ("weeks_worn", "drop_mm_worn"):
        value = number((typed.get(name) or "").strip())
        if value is not None:  # a missing number is the schema's error below
            body[name] = value
    symptoms = {}
    for name in SYMPTOMS_AFTER:
        text = (typed.get(f"symptoms_after.{name}") or "").strip()
        if text:
            symptoms[name] = int(text) if text.isdigit() else text
    if symptoms:
        body["symptoms_after"] = symptoms
    try:
        return OutcomeSchema().load(body), {}
    except ValidationError as exc:
        messages: dict[str, Any] = exc.normalized_messages()
        errors = {
            "weeks_worn": _("Enter a whole number of weeks from 0 to 104."),
            "drop_mm_worn": _("Enter a number from 0 to 30."),
            "outcome": _("Choose how it went."),
        }
        found = {name: text for name, text in errors.items() if name in messages}
        for inner in messages.get("symptoms_after", {}):
            found[f"symptoms_after.{inner}"] = explain(BY_PATH[f"symptoms.{inner}"])
        return {}, found


def _error_page(exc: Exception) -> Any:
    """An error on a page, as a page (the API answers its errors as JSON)."""
    if isinstance(exc, Unavailable):
        code, title = 503, _("Please try again")
        message = _("The database did not answer, so nothing was saved. Try again in a moment.")
    else:
        code = getattr(exc, "code", 500) or 500
        title, message = {
            400: (_("Please try again"), _("The form expired or did not come from this page.")),
            404: (_("Not found"), _("There is no fitting with this reference for your shop.")),
            429: (_("Too many attempts"), _("Wait a minute, then try again.")),
        }.get(code, (_("Something went wrong"), _("Please try again.")))
    return render_template("error.html", title=title, message=message, form=FlaskForm()), code


# The pages load only their own style sheet and script; nothing may frame them.
POLICY = ("default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
          "base-uri 'none'")  # fmt: skip


def _policy(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def blueprint(sign_in_limit: Callable[[Any], Any]) -> Blueprint:
    """The pages' blueprint for one app; `sign_in_limit` rate-limits sign-in attempts."""
    blp = Blueprint("fit", __name__, url_prefix="/fit", template_folder="templates",
                    static_folder="static", static_url_path="/static")  # fmt: skip
    blp.context_processor(lambda: {"lang": str(get_locale() or "en")})
    blp.after_request(_policy)
    for code in (400, 404, 429):
        blp.register_error_handler(code, _error_page)
    blp.register_error_handler(Unavailable, _error_page)
    blp.add_url_rule("/sign-in", "sign_in", sign_in_limit(sign_in), methods=["GET", "POST"])
    blp.add_url_rule("/sign-out", "sign_out", sign_out, methods=["POST"])
    blp.add_url_rule("", "form", form, methods=["GET", "POST"])
    blp.add_url_rule("/follow-up/<request_id>", "follow_up", follow_up, methods=["GET", "POST"])
    return blp
