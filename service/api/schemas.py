"""The answers' marshmallow schemas, for the OpenAPI document (the request's is the core's)."""

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from service.core.combine import DIRECTIONS
from service.core.fields import BANDS, SEVERITIES
from service.core.schema import StrictNumber

MAX_ITEMS = 1000  # a batch's items, at most
OUTCOMES = ("better", "same", "worse")
SYMPTOMS_AFTER = SEVERITIES[:7]  # the pains and swelling a follow-up asks about again


class DropRangeSchema(Schema):
    min = fields.Integer(required=True)
    max = fields.Integer(required=True)


class PlanStepSchema(Schema):
    step = fields.Integer(required=True)
    drop_mm = fields.Integer(required=True)
    weeks = fields.Integer(required=True)
    note = fields.String(required=True)


class ReferralSchema(Schema):
    urgency = fields.String(required=True, validate=validate.OneOf(("today", "soon")))
    reasons = fields.List(fields.String(), required=True)


class FollowUpSchema(Schema):
    retest_weeks = fields.Integer(required=True)
    step_back_if = fields.String(required=True)


class RecommendationSchema(Schema):
    drop_mm = fields.Nested(DropRangeSchema, required=True)
    band = fields.String(required=True, validate=validate.OneOf(BANDS))
    direction = fields.String(required=True, validate=validate.OneOf(DIRECTIONS))
    transition_plan = fields.List(fields.Nested(PlanStepSchema), required=True)
    confidence = fields.Float(required=True)
    refer_to_clinician = fields.Boolean(required=True)
    referral = fields.Nested(ReferralSchema, allow_none=True, required=True)
    follow_up = fields.Nested(FollowUpSchema, required=True)


class RuleFiringSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    effect = fields.String(required=True)
    message = fields.String(required=True)
    rationale = fields.String(required=True)
    overruled = fields.Boolean(required=True)


class FactorSchema(Schema):
    feature = fields.String(required=True)
    label = fields.String(required=True)
    value = fields.Raw(allow_none=True)
    unit = fields.String(allow_none=True, required=True)
    contribution = fields.Float(required=True)


class ModelViewSchema(Schema):
    version = fields.String(allow_none=True, required=True)
    trained_on = fields.String(
        allow_none=True, required=True, validate=validate.OneOf(("simulated", "outcomes", "mixed"))
    )
    band_probabilities = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    top_band = fields.String(allow_none=True, required=True)
    factors_explain = fields.String(allow_none=True, required=True)
    top_factors = fields.List(fields.Nested(FactorSchema), required=True)
    overridden_by_rules = fields.Boolean(required=True)


class ExplanationSchema(Schema):
    summary = fields.String(required=True)
    rules = fields.List(fields.Nested(RuleFiringSchema), required=True)
    model = fields.Nested(ModelViewSchema, required=True)
    missing_inputs = fields.List(fields.String(), required=True)


class AdviceSchema(Schema):
    id = fields.String(required=True)
    text = fields.String(required=True)


class RecommendationResponseSchema(Schema):
    request_id = fields.String(required=True)
    client_ref = fields.String(allow_none=True, required=True)
    recommendation = fields.Nested(RecommendationSchema, required=True)
    explanation = fields.Nested(ExplanationSchema, required=True)
    advice = fields.List(fields.Nested(AdviceSchema), required=True)
    degraded = fields.Boolean(required=True)


class BatchRequestSchema(Schema):
    items = fields.List(
        fields.Raw(allow_none=True, metadata={"description": "a recommendation request"}),
        required=True, validate=validate.Length(1, MAX_ITEMS),
    )  # fmt: skip


class BatchResponseSchema(Schema):
    results = fields.List(fields.Raw(), required=True, metadata={
        "description": "per item, in order: a recommendation, or {index, error} for an invalid item"
    })  # fmt: skip


class CatalogueRuleSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    stage = fields.String(required=True)
    effect = fields.String(required=True)
    message = fields.String(required=True)
    grade = fields.String(required=True)
    sources = fields.List(fields.String(), required=True)
    rationale = fields.String(required=True)


class CatalogueSchema(Schema):
    version = fields.String(required=True)
    rules = fields.List(fields.Nested(CatalogueRuleSchema), required=True)


def _severity() -> fields.Field:
    return StrictNumber(whole=True, validate=validate.Range(0, 10), metadata={"type": "integer"})


SymptomsAfterSchema = Schema.from_dict(
    {name: _severity() for name in SYMPTOMS_AFTER}, name="SymptomsAfterSchema"
)


class OutcomeSchema(Schema):
    """What happened after a recommendation: how long the person wore which drop, and how they
    are now. Numbers only, no free text."""

    request_id = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9._-]{1,80}$"),
        metadata={"description": "the request_id of the recommendation's answer"},
    )  # fmt: skip
    weeks_worn = StrictNumber(
        whole=True, required=True, validate=validate.Range(0, 104), metadata={"type": "integer"}
    )
    drop_mm_worn = StrictNumber(
        required=True, validate=validate.Range(0, 30),
        metadata={"description": "the effective drop worn: the shoe's drop plus any insert"},
    )  # fmt: skip
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    symptoms_after = fields.Nested(SymptomsAfterSchema)

    @post_load
    def _whole(self, report: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Whole numbers as ints (4.0 and 4 weeks are one follow-up), no symptoms as {}."""
        after = report.get("symptoms_after") or {}
        return {**report, "weeks_worn": int(report["weeks_worn"]),
                "symptoms_after": {k: int(v) for k, v in after.items()}}  # fmt: skip


class OutcomeReceiptSchema(Schema):
    outcome_id = fields.String(required=True)
    request_id = fields.String(required=True)
    received_at = fields.DateTime(required=True)
