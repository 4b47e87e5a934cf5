"""The recommendation log and its outcomes: written in the request that answers, read back by
tenant only, pruned by age and erased by request id.

A tenant sees only its own rows: every read and write here takes the tenant and filters by it,
so another tenant's request id is indistinguishable from one that never existed.
"""

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from service.core.errors import HeeldropError
from service.core.fields import FIELDS
from service.db import Outcome, Recommendation, Unavailable, now

# Fields a person may type freely (such as `client_ref`) are never stored.
FREE_TEXT = frozenset(f.path for f in FIELDS if f.kind == "text")
# Built once: a statement object is reused by every write (SQLAlchemy caches its compiled form).
_LOG = insert(Recommendation)


class UnknownRequest(HeeldropError):
    """No recommendation with that id for this tenant."""


class DuplicateOutcome(HeeldropError):
    """An outcome for the same recommendation and weeks worn is already recorded."""


def stored_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """A validated request as the log keeps it: without its free-text fields."""
    kept: dict[str, Any] = {}
    for name, value in request.items():
        if name in FREE_TEXT:
            continue
        if isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if f"{name}.{k}" not in FREE_TEXT}
        kept[name] = value
    return kept


def _row(tenant: str, at: datetime, versions: dict[str, Any], request: Mapping[str, Any],
         response: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    rec = response["recommendation"]
    referral = rec["referral"]
    return {
        "request_id": response["request_id"], "tenant": tenant, "created_at": at,
        **versions, "request": stored_request(request),
        "drop_min_mm": rec["drop_mm"]["min"], "drop_max_mm": rec["drop_mm"]["max"],
        "band": rec["band"], "direction": rec["direction"], "confidence": rec["confidence"],
        "referral": referral["urgency"] if referral else None,
    }  # fmt: skip


class RecommendationLog:
    """Writes answered recommendations and records their outcomes, for one database."""

    def __init__(self, engine: Engine, rules_version: str):
        self.engine = engine
        self.rules_version = rules_version

    def write(
        self,
        tenant: str,
        requests: Sequence[Mapping[str, Any]],
        responses: Sequence[Mapping[str, Any]],
    ) -> None:
        """Log answered requests in one transaction; Unavailable if it did not commit."""
        if not responses:
            return
        model = responses[0]["explanation"]["model"]
        versions = {"rules_version": self.rules_version, "model_version": model["version"],
                    "trained_on": model["trained_on"]}  # fmt: skip
        at = now()
        rows = [_row(tenant, at, versions, q, r) for q, r in zip(requests, responses, strict=True)]
        try:
            with self.engine.begin() as connection:
                connection.execute(_LOG, rows)
        except SQLAlchemyError as exc:
            raise Unavailable(type(exc).__name__) from None

    def record_outcome(self, tenant: str, report: Mapping[str, Any]) -> dict[str, Any]:
        """Store one outcome of a recommendation this tenant got; its receipt.

        UnknownRequest when the id is not one of this tenant's, DuplicateOutcome when the same
        weeks worn are already reported, Unavailable when the database fails."""
        request_id = report["request_id"]
        receipt = {"outcome_id": secrets.token_hex(16), "request_id": request_id,
                   "received_at": now()}  # fmt: skip
        row = {**receipt, "tenant": tenant, "weeks_worn": report["weeks_worn"],
               "drop_mm_worn": report["drop_mm_worn"], "outcome": report["outcome"],
               "symptoms_after": dict(report.get("symptoms_after") or {})}  # fmt: skip
        try:
            with self.engine.begin() as connection:
                if not self._owns(connection, tenant, request_id):
                    raise UnknownRequest(request_id)
                connection.execute(insert(Outcome), [row])
        except IntegrityError:
            # The same weeks already reported; or the recommendation was erased meanwhile.
            with self.engine.connect() as connection:
                if not self._owns(connection, tenant, request_id):
                    raise UnknownRequest(request_id) from None
            raise DuplicateOutcome(request_id) from None
        except SQLAlchemyError as exc:
            raise Unavailable(type(exc).__name__) from None
        return receipt

    def given(self, tenant: str, request_id: str) -> dict[str, Any] | None:
        """What `tenant`'s recommendation `request_id` said and when, with its stored request;
        None when it is not one of this tenant's. Unavailable if the database fails."""
        columns = (Recommendation.created_at, Recommendation.request, Recommendation.drop_min_mm,
                   Recommendation.drop_max_mm, Recommendation.band, Recommendation.direction,
                   Recommendation.referral)  # fmt: skip
        try:
            with self.engine.connect() as connection:
                row = (
                    connection.execute(
                        select(*columns).where(
                            Recommendation.request_id == request_id,
                            Recommendation.tenant == tenant,
                        )
                    )
                    .mappings()
                    .first()
                )
        except SQLAlchemyError as exc:
            raise Unavailable(type(exc).__name__) from None
        return None if row is None else dict(row)

    @staticmethod
    def _owns(connection: Any, tenant: str, request_id: str) -> bool:
        found = connection.execute(
            select(Recommendation.request_id).where(
                Recommendation.request_id == request_id, Recommendation.tenant == tenant
            )
        ).first()
        return found is not None


def prune(engine: Engine, days: int, at: datetime | None = None) -> tuple[int, int]:
    """Delete recommendations logged more than `days` ago, with their outcomes; how many of
    each went. `days` below 1 is refused: it would empty the log."""
    if days < 1:
        raise HeeldropError(
            f"a retention of {days} days would delete the whole log; give 1 or more"
        )
    cutoff = (at or now()) - timedelta(days=days)
    old = select(Recommendation.request_id).where(Recommendation.created_at < cutoff)
    return _delete(engine, old)


def forget(engine: Engine, request_id: str) -> tuple[int, int]:
    """Erase one recommendation and its outcomes (every tenant's: an operator's erasure);
    how many of each went."""
    one = select(Recommendation.request_id).where(Recommendation.request_id == request_id)
    return _delete(engine, one)


def _delete(engine: Engine, ids: Any) -> tuple[int, int]:
    with engine.begin() as connection:
        outcomes = connection.execute(delete(Outcome).where(Outcome.request_id.in_(ids)))
        recs = connection.execute(delete(Recommendation).where(Recommendation.request_id.in_(ids)))
    return recs.rowcount, outcomes.rowcount
