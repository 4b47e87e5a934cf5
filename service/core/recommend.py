"""The one recommendation path shared by the API, the batch scorer and the CLI."""

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from service.core.columns import Columns, from_requests
from service.core.combine import Decisions, RuleBook, decide
from service.core.explain import render
from service.core.features import features
from service.core.model import ServingModel
from service.core.rules import Rule, load_rules
from service.core.schema import load_request


class Recommender:
    """Rules plus an optional model (None = rules only, `degraded`)."""

    def __init__(self, rules: tuple[Rule, ...] | None = None, model: ServingModel | None = None):
        self.rules = rules if rules is not None else load_rules()
        self.book = RuleBook(self.rules)
        self.model = model

    def decide(self, cols: Columns, factors: bool = False) -> Decisions:
        """Decisions for every row of whole columns; with `factors`, the model's attributions
        too (what the answers' top factors show)."""
        ctx, X = features(cols)
        if self.model is None:
            return decide(ctx, self.book, None)
        probs = self.model.fast.predict_proba(X)
        d = decide(ctx, self.book, probs)
        d.inputs = X
        if factors:
            d.factors = self.model.fast.attributions(X, probs)
        return d

    def explain(
        self, requests: Sequence[Mapping[str, Any]], request_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Full responses for validated requests, in order."""
        d = self.decide(from_requests(requests), factors=True)
        ids = request_ids or [secrets.token_hex(16) for _ in requests]
        return [
            {"request_id": ids[i], "client_ref": request.get("client_ref"), **answer}
            for i, (request, answer) in enumerate(zip(requests, render(d, self.model), strict=True))
        ]

    def recommend(self, data: Any, request_id: str | None = None) -> dict[str, Any]:
        """Validate one request body and answer it; InvalidInput when it is not valid."""
        request = load_request(data)
        return self.explain([request], [request_id] if request_id else None)[0]
