"""One realistic example of each request and answer body, for the OpenAPI document: a runner
whose Achilles tendon hurts since she moved from 10 mm to 4 mm shoes, her answer, and the bodies
around it. Each is checked against its schema, and the answer against the rules' own, by
tests/api/test_schemas.py."""

from typing import Any

from service.core.rules import load_rules

# Her 4 mm shoe plus the largest insert (25 mm) stays within the 30 mm the API allows: the
# schemathesis coverage phase builds bodies from this example, adding any field, unfiltered.
REQUEST: dict[str, Any] = {
    "client_ref": "fitting-0412",
    "person": {"age_years": 46, "body_mass_kg": 68, "sex": "female"},
    "footwear": {
        "current_drop_mm": 4, "current_type": "road_running", "weeks_in_current_drop": 8,
        "previous_drop_mm": 10, "years_in_heeled_shoes": 20,
    },
    "activity": {"primary": "running", "running_km_per_week": 25, "running_years": 6},
    "symptoms": {"calf_tightness": 3, "achilles_pain": 4, "started_after_shoe_change": True},
    "mobility": {
        "knee_to_wall_cm": {"left": 9.5, "right": 10}, "restriction_felt": "back",
        "tighter_with_knee": "straight",
    },
}  # fmt: skip

_RULES = [
    ("HD011", "floor 8 mm (symptom), advice",
     "Achilles pain (4/10): no lower than 8 mm while the tendon hurts."),
    ("HD019", "ceiling 14 mm (policy)",
     "Everyday shoes: no more than 14 mm."),
    ("HD024", "floor 8 mm, ceiling 10 mm (symptom), advice",
     "Symptoms after a fast move down from 10 mm: no lower than 8 mm for now."),
    ("HD026", "floor 4 mm (symptom)",
     "Calf tightness (3/10): no lower than your 4 mm while the calf is tight."),
    ("HD047", "advice",
     "The calf stretch is tighter with the knee straight: the two-joint calf muscle is the "
     "tight part."),
]  # fmt: skip
_IN_FORCE = {rule.id: rule for rule in load_rules()}  # names and rationales as in force

RESPONSE: dict[str, Any] = {
    "request_id": "2b60fa83df31f175a5a76262f4740889",
    "client_ref": "fitting-0412",
    "recommendation": {
        "drop_mm": {"min": 8, "max": 10},
        "band": "moderate",
        "direction": "raise",
        "transition_plan": [{
            "step": 1, "drop_mm": 8, "weeks": 4,
            "note": "Change to 8 mm shoes, or add a heel insert; going higher can be done at once.",
        }],
        "confidence": 0.4934,
        "refer_to_clinician": False,
        "referral": None,
        "follow_up": {
            "retest_weeks": 4,
            "step_back_if": "pain rises by 2 or more out of 10, or a new pain appears",
        },
    },
    "explanation": {
        "summary": "Raise your heel drop from 4 mm to 8-10 mm (moderate): other shoes or a heel "
        "insert. Your Achilles tendon hurts, and a lower heel would load it more.",
        "rules": [
            {"id": rid, "name": _IN_FORCE[rid].name, "effect": effect, "message": message,
             "rationale": _IN_FORCE[rid].rationale, "overruled": False}
            for rid, effect, message in _RULES
        ],
        "model": {
            "version": "20261207T065941912553Z",
            "trained_on": "simulated",
            "band_probabilities": {
                "zero": 0.0, "low": 0.0119, "moderate": 0.4934, "high": 0.4934, "lift": 0.0012,
            },
            "top_band": "high",
            "factors_explain": "high",
            "top_factors": [
                {"feature": "symptoms.achilles_pain", "label": "Achilles pain", "value": 4.0,
                 "unit": "/10", "contribution": 1.1415},
                {"feature": "footwear.current_drop_mm", "label": "current effective drop",
                 "value": 4.0, "unit": "mm", "contribution": -0.4096},
            ],
            "overridden_by_rules": True,
        },
        "missing_inputs": [],
    },
    "advice": [
        {"id": "HD011", "text": "A progressive tendon-loading programme is the treatment. Early "
         "on, a heel-lift insert can ease an irritable tendon, if the range above leaves room for "
         "one and a higher heel has not made the pain worse; wean it as the pain settles. It is "
         "not a cure."},
        {"id": "HD024",
         "text": "Once you have had 4 weeks without symptoms, lower again in smaller steps."},
        {"id": "HD047", "text": "Stretch the calf with the knee straight; lower drops stretch it, "
         "so change slowly."},
    ],
    "degraded": False,
}  # fmt: skip

ERROR: dict[str, Any] = {
    "code": 422,
    "status": "Unprocessable Entity",
    "message": "The request has invalid fields.",
    "errors": {"footwear.current_drop_mm": ["Must be greater than or equal to 0 and less than or "
                                            "equal to 30."]},
}  # fmt: skip
BATCH_REQUEST = {"items": [REQUEST, {"footwear": {"current_drop_mm": 40}}]}
BATCH_ITEM_ERROR = {"index": 1, "error": ERROR}
BATCH_RESPONSE = {"results": [RESPONSE, BATCH_ITEM_ERROR]}
OUTCOME = {
    "request_id": RESPONSE["request_id"], "weeks_worn": 4, "drop_mm_worn": 8, "outcome": "better",
    "symptoms_after": {"achilles_pain": 1, "calf_tightness": 2},
}  # fmt: skip
OUTCOME_RECEIPT = {
    "outcome_id": "5b1f0c7e9a2d4c38b6e1d0a9f4c3b2a1",
    "request_id": RESPONSE["request_id"],
    "received_at": "2027-01-18T10:42:07+00:00",
}
CATALOGUE = {
    "version": "3f0c2a9d41be",
    "rules": [{
        "id": "HD016", "name": "knee-offload", "stage": "bounds",
        "effect": "ceiling min(8, ceil(current)) mm (symptom)",
        "message": "Knee pain ({knee_pain:.0f}/10): no higher than {ceiling_value:.0f} mm; a "
        "higher drop loads the knee more.",
        "grade": "B", "sources": ["Sinclair 2014", "Kerrigan 2009"],
        "rationale": _IN_FORCE["HD016"].rationale,
    }],
}  # fmt: skip
MODEL_INFO = {
    "version": "20261207T065941912553Z",
    "trained_at": "2026-12-07T06:59:41+00:00",
    "family": "logistic_regression",
    "metrics": {"rows": 800, "macro_f1": 0.6181, "log_loss": 0.8427, "brier": 0.5023,
                "ece": 0.0436, "accuracy": 0.6238},
    "scikit_learn_version": "1.9.1",
    "training_data_digest": "a4dd931922b8381685f3b0c8a0f3d722440d55aba5b4c06b43e8cdf463a5e3c4",
    "training_data_origin": "simulated",
    "trained_on": "simulated",
    "training_rows": {"files (simulated)": 4000},
    "degraded": False,
}  # fmt: skip
RELOAD = {
    "version": "20270201T080000000000Z",
    "previous": "20261207T065941912553Z",
    "all_workers": True,
}
