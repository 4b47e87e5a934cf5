"""The answers' marshmallow schemas, for the OpenAPI document (the request's is the core's), each
field with the words the document gives it."""

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

from service.core.combine import DIRECTIONS
from service.core.fields import BANDS, SEVERITIES
from service.core.schema import StrictNumber

MAX_ITEMS = 1000  # a batch's items, at most
OUTCOMES = ("better", "same", "worse")
SYMPTOMS_AFTER = SEVERITIES[:7]  # the pains and swelling a follow-up asks about again
TRAINED_ON = ("simulated", "outcomes", "mixed")


def _says(text: str) -> dict[str, Any]:
    return {"metadata": {"description": text}}


class OneOf(fields.Field):
    """A value that one of `schemas` loads, tried in order (the document says `oneOf`)."""

    def __init__(self, *schemas: type[Schema], **kwargs: Any):
        super().__init__(**kwargs)
        self.schemas = schemas

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        messages = []
        for schema in self.schemas:
            try:
                return schema().load(value)
            except ValidationError as exc:
                messages.append(exc.messages)
        raise ValidationError(f"Fits none of {len(self.schemas)} shapes: {messages}")


class ErrorSchema(Schema):
    """The one error shape of every answer that is not a success."""

    code = fields.Integer(required=True, **_says("the HTTP status code, as a number"))
    status = fields.String(required=True, **_says("the status's name, as 'Unprocessable Entity'"))
    message = fields.String(required=True, **_says("what went wrong, for a person to read"))
    errors = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()), required=True,
        **_says("the messages of each invalid field, by its dotted path (such as "
                "'footwear.current_drop_mm'); empty when no field is at fault"),
    )  # fmt: skip


class DropRangeSchema(Schema):
    min = fields.Integer(required=True, **_says("the lowest effective drop advised, in mm"))
    max = fields.Integer(required=True, **_says("the highest effective drop advised, in mm"))


class PlanStepSchema(Schema):
    step = fields.Integer(required=True, **_says("1 for the first step"))
    drop_mm = fields.Integer(required=True, **_says("the effective drop to wear, in mm"))
    weeks = fields.Integer(required=True, **_says("how long to wear it before the next step"))
    note = fields.String(required=True, **_says("the step in words"))


class ReferralSchema(Schema):
    urgency = fields.String(
        required=True, validate=validate.OneOf(("today", "soon")),
        **_says("today: see a clinician today; soon: before any change of shoes"),
    )  # fmt: skip
    reasons = fields.List(fields.String(), required=True, **_says("why, in plain words"))


class FollowUpSchema(Schema):
    retest_weeks = fields.Integer(
        required=True, **_says("when to measure the ankle and rate the symptoms again, in weeks")
    )
    step_back_if = fields.String(required=True, **_says("when to go back a step"))


class RecommendationSchema(Schema):
    drop_mm = fields.Nested(
        DropRangeSchema, required=True,
        **_says("the effective drop advised (the shoe's drop plus any insert): 0 <= min <= max "
                "<= 30"),
    )  # fmt: skip
    band = fields.String(
        required=True, validate=validate.OneOf(BANDS),
        **_says("the band of the range: zero 0-2, low 3-6, moderate 7-10, high 11-14, lift "
                "15-30 mm"),
    )  # fmt: skip
    direction = fields.String(
        required=True, validate=validate.OneOf(DIRECTIONS),
        **_says("from the current effective drop: keep (inside the range), lower_gradually, "
                "raise, or step_back_up (from 2 mm or less)"),
    )  # fmt: skip
    transition_plan = fields.List(
        fields.Nested(PlanStepSchema), required=True,
        **_says("the steps to the range: down at most 4 mm a step to its top; up in one step "
                "to its bottom; none when keeping"),
    )  # fmt: skip
    confidence = fields.Float(required=True, **_says("0 to 1: how sure the answer is"))
    refer_to_clinician = fields.Boolean(
        required=True, **_says("true exactly when `referral` is given")
    )
    referral = fields.Nested(
        ReferralSchema, allow_none=True, required=True,
        **_says("a clinician should see the person first; null when not"),
    )  # fmt: skip
    follow_up = fields.Nested(FollowUpSchema, required=True, **_says("when to check again"))


class RuleFiringSchema(Schema):
    id = fields.String(required=True, **_says("the rule's stable id, as HD016"))
    name = fields.String(required=True, **_says("the rule's name"))
    effect = fields.String(required=True, **_says("what the rule did to the answer"))
    message = fields.String(required=True, **_says("what the rule says, with the person's values"))
    rationale = fields.String(required=True, **_says("its evidence: grade and sources"))
    overruled = fields.Boolean(
        required=True, **_says("true when a rule of higher priority or a referral set it aside")
    )


class FactorSchema(Schema):
    feature = fields.String(required=True, **_says("the input, by its field path"))
    label = fields.String(required=True, **_says("the input in plain words"))
    value = fields.Raw(allow_none=True, **_says("the person's value of it"))
    unit = fields.String(allow_none=True, required=True, **_says("the value's unit, if any"))
    contribution = fields.Float(
        required=True, **_says("how much it moved the model towards `factors_explain`'s band")
    )


class ModelViewSchema(Schema):
    version = fields.String(
        allow_none=True, required=True, **_says("the model's version; null with no model")
    )
    trained_on = fields.String(
        allow_none=True, required=True, validate=validate.OneOf(TRAINED_ON),
        **_says("what the model learned from: a simulated cohort, real outcomes, or both"),
    )  # fmt: skip
    band_probabilities = fields.Dict(
        keys=fields.String(), values=fields.Float(), required=True,
        **_says("the model's probability of each band; empty with no model"),
    )  # fmt: skip
    top_band = fields.String(
        allow_none=True, required=True, validate=validate.OneOf(BANDS),
        **_says("the model's most probable band"),
    )  # fmt: skip
    factors_explain = fields.String(
        allow_none=True, required=True, validate=validate.OneOf(BANDS),
        **_says("the band the top factors explain"),
    )  # fmt: skip
    top_factors = fields.List(
        fields.Nested(FactorSchema), required=True, **_says("the inputs that weighed most")
    )
    overridden_by_rules = fields.Boolean(
        required=True, **_says("true when the rules moved the answer off the model's top band")
    )


class ExplanationSchema(Schema):
    summary = fields.String(
        required=True, **_says("at most 3 sentences and 60 words, to read out to the person")
    )
    rules = fields.List(
        fields.Nested(RuleFiringSchema), required=True, **_says("the rules that fired")
    )
    model = fields.Nested(ModelViewSchema, required=True, **_says("what the model thought"))
    missing_inputs = fields.List(
        fields.String(), required=True,
        **_says("field paths that would firm the answer up if measured"),
    )  # fmt: skip


class AdviceSchema(Schema):
    id = fields.String(required=True, **_says("the rule that gives it"))
    text = fields.String(required=True, **_says("the advice"))


class RecommendationResponseSchema(Schema):
    request_id = fields.String(
        required=True, **_says("this answer's id: quote it to report an outcome or a problem")
    )
    client_ref = fields.String(allow_none=True, required=True, **_says("the request's, echoed"))
    recommendation = fields.Nested(RecommendationSchema, required=True, **_says("what to wear"))
    explanation = fields.Nested(ExplanationSchema, required=True, **_says("why"))
    advice = fields.List(fields.Nested(AdviceSchema), required=True, **_says("what else to do"))
    degraded = fields.Boolean(
        required=True, **_says("true when no model was loaded: the rules alone answered")
    )


class BatchItemErrorSchema(Schema):
    index = fields.Integer(required=True, **_says("the invalid item's place in `items`, from 0"))
    error = fields.Nested(ErrorSchema, required=True, **_says("why it is invalid (always a 422)"))


class BatchRequestSchema(Schema):
    items = fields.List(
        fields.Raw(allow_none=True, **_says(
            "a recommendation request (RecommendationRequest); an invalid one gets an error in "
            "its place, so any value is taken")),
        required=True, validate=validate.Length(1, MAX_ITEMS), **_says("1 to 1000 requests"),
    )  # fmt: skip


class BatchResponseSchema(Schema):
    results = fields.List(
        OneOf(RecommendationResponseSchema, BatchItemErrorSchema),
        required=True,
        **_says("one per item, in order: its answer, or {index, error} for an invalid item"),
    )  # fmt: skip


class CatalogueRuleSchema(Schema):
    id = fields.String(required=True, **_says("stable id, never reused"))
    name = fields.String(required=True, **_says("a readable name"))
    stage = fields.String(required=True, **_says("when it runs: referral, bounds, advice, ..."))
    effect = fields.String(required=True, **_says("what it does, its bounds as written"))
    message = fields.String(
        required=True, **_says("what it says; {names} take the person's values")
    )
    grade = fields.String(
        required=True, **_says("A a randomised trial, B a lab or cohort study, C opinion")
    )
    sources = fields.List(fields.String(), required=True, **_says("where the evidence comes from"))
    rationale = fields.String(required=True, **_says("why, with the grade"))


class CatalogueSchema(Schema):
    version = fields.String(
        required=True, **_says("a digest of the rule table; answers are logged with it")
    )
    rules = fields.List(fields.Nested(CatalogueRuleSchema), required=True, **_says("by id"))


def _severity(name: str) -> fields.Field:
    return StrictNumber(
        whole=True, validate=validate.Range(0, 10),
        metadata={"type": "integer", "description": f"{name} now, 0 (none) to 10"},
    )  # fmt: skip


SymptomsAfterSchema = Schema.from_dict(
    {name: _severity(name.replace("_", " ")) for name in SYMPTOMS_AFTER},
    name="SymptomsAfterSchema",
)


class OutcomeSchema(Schema):
    """What happened after a recommendation: how long the person wore which drop, and how they
    are now. Numbers only, no free text."""

    request_id = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9._-]{1,80}$"),
        **_says("the request_id of the recommendation's answer"),
    )  # fmt: skip
    weeks_worn = StrictNumber(
        whole=True, required=True, validate=validate.Range(0, 104),
        metadata={"type": "integer", "description": "weeks since the recommendation"},
    )  # fmt: skip
    drop_mm_worn = StrictNumber(
        required=True, validate=validate.Range(0, 30),
        **_says("the effective drop worn, in mm: the shoe's drop plus any insert"),
    )  # fmt: skip
    outcome = fields.String(
        required=True, validate=validate.OneOf(OUTCOMES), **_says("how the person is now")
    )
    symptoms_after = fields.Nested(SymptomsAfterSchema, **_says("the pains now, as rated before"))

    @post_load
    def _whole(self, report: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Whole numbers as ints (4.0 and 4 weeks are one follow-up), no symptoms as {}."""
        after = report.get("symptoms_after") or {}
        return {**report, "weeks_worn": int(report["weeks_worn"]),
                "symptoms_after": {k: int(v) for k, v in after.items()}}  # fmt: skip


class OutcomeReceiptSchema(Schema):
    outcome_id = fields.String(required=True, **_says("the stored outcome's id"))
    request_id = fields.String(required=True, **_says("the recommendation it is about"))
    received_at = fields.DateTime(required=True, **_says("when it was stored (UTC)"))


class ModelInfoSchema(Schema):
    version = fields.String(allow_none=True, required=True, **_says("null when no model serves"))
    trained_at = fields.String(allow_none=True, required=True, **_says("when, ISO 8601"))
    family = fields.String(allow_none=True, **_says("the kind of classifier"))
    metrics = fields.Dict(required=True, **_says("held-out test metrics, such as macro_f1"))
    scikit_learn_version = fields.String(
        allow_none=True, required=True, **_says("the scikit-learn it was trained with")
    )
    training_data_digest = fields.String(
        allow_none=True, required=True, **_says("sha256 of the training data")
    )
    training_data_origin = fields.String(allow_none=True, **_says("where the data came from"))
    trained_on = fields.String(
        allow_none=True, required=True, validate=validate.OneOf(TRAINED_ON),
        **_says("simulated, outcomes (real people) or mixed"),
    )  # fmt: skip
    training_rows = fields.Dict(
        keys=fields.String(), values=fields.Integer(), required=True,
        **_says("training rows by source"),
    )  # fmt: skip
    degraded = fields.Boolean(required=True, **_says("true when no model serves: rules only"))


class ReloadSchema(Schema):
    version = fields.String(allow_none=True, required=True, **_says("the model now serving"))
    previous = fields.String(allow_none=True, required=True, **_says("the model served before"))
    all_workers = fields.Boolean(
        required=True, **_says("true when every worker was told to load it too")
    )
