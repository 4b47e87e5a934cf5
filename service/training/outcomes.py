"""Training rows from the recommendation log joined to its outcomes: the labelling rule.

A recommendation's outcome labels it when all of these hold (docs/outcomes.md says why):
- it was reported after at least MIN_WEEKS weeks in the drop (tissues adapt over weeks; an
  earlier report says how the first days felt, not whether the drop suits the person);
- it is `better` or `same`, and no pain or swelling the person had rose by RISE or more points
  (a drop that is "the same" while the Achilles got worse did not work);
- the person was not referred to a clinician (what happened next was the clinician's care).
The label is then the band of `drop_mm_worn` (the effective drop the person actually wore, not
the one recommended), and its outcome drop is that drop. Of several follow-ups of one
recommendation the longest-worn one speaks. A `worse` outcome, or a rise in pain, is evidence
*against* the band worn, not for any other: it labels nothing, and is counted (in the retrain
report and in `heeldrop drift`'s outcome rates per band) rather than guessed into a label.
"""

import hashlib
from collections import Counter
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from service.core.columns import from_requests
from service.core.features import band_of, features
from service.core.fields import BANDS
from service.db import Outcome, Recommendation
from service.training.data import Labelled

MIN_WEEKS = 4
RISE = 2
SOURCE = "recommendation log outcomes"


def label(request: dict[str, Any], referral: str | None, outcome: Any) -> str:
    """Why an outcome labels nothing, or "" when it labels the band of its drop worn."""
    if referral is not None:
        return "referred to a clinician"
    if outcome.weeks_worn < MIN_WEEKS:
        return f"worn under {MIN_WEEKS} weeks"
    if outcome.outcome == "worse":
        return "worse"
    before = request.get("symptoms") or {}
    for name, after in (outcome.symptoms_after or {}).items():
        if after - (before.get(name) or 0) >= RISE:
            return f"a pain rose by {RISE} or more"
    return ""


def from_log(engine: Engine, since: datetime | None = None) -> tuple[Labelled | None, Counter[str]]:
    """The labelled rows of recommendations logged since `since` (all when None), and how many
    outcomes labelled nothing, by reason. None when no outcome labels anything."""
    query = (
        select(Recommendation.request_id, Recommendation.request, Recommendation.referral,
               Outcome.outcome_id, Outcome.weeks_worn, Outcome.drop_mm_worn, Outcome.outcome,
               Outcome.symptoms_after)
        .join(Outcome, Outcome.request_id == Recommendation.request_id)
        .order_by(Recommendation.created_at, Recommendation.request_id, Outcome.weeks_worn.desc())
    )  # fmt: skip
    if since is not None:
        query = query.where(Recommendation.created_at >= since)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    latest: dict[str, Any] = {}
    for row in rows:  # the longest-worn follow-up of each recommendation
        latest.setdefault(row.request_id, row)
    unused: Counter[str] = Counter()
    requests, drops, digest = [], [], hashlib.sha256()
    for row in latest.values():
        reason = label(row.request, row.referral, row)
        if reason:
            unused[reason] += 1
            continue
        requests.append(row.request)
        drops.append(row.drop_mm_worn)
        digest.update(row.outcome_id.encode())
    if not requests:
        return None, unused
    ctx, X = features(from_requests(requests))
    drop = np.array(drops, dtype=np.float64)
    n = len(requests)
    labelled = Labelled(
        X, ctx, np.array(BANDS)[band_of(drop)], drop, digest.hexdigest(), n, {},
        np.ones(n, dtype=bool), {SOURCE: n},
    )  # fmt: skip
    return labelled, unused
