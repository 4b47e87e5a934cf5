"""The one recommendation path shared by the API, the batch scorer and the CLI."""

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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

    def decide(self, cols: Columns) -> tuple[Decisions, np.ndarray | None]:
        """Score whole columns: decisions for every row, and the model inputs used."""
        d, X, _ = self._score(cols, factors=False)
        return d, X

    def _score(
        self, cols: Columns, factors: bool
    ) -> tuple[Decisions, np.ndarray | None, np.ndarray | None]:
        """Decisions, model inputs and (with `factors`) attributions, from one model pass."""
        ctx, X = features(cols)
        if self.model is None:
            return decide(ctx, self.book, None), None, None
        probs, attributions = self.model.fast.run(X, factors=factors)
        return decide(ctx, self.book, probs), X, attributions

    def explain(
        self, requests: Sequence[Mapping[str, Any]], request_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Full responses for validated requests, in order."""
        cols = from_requests(requests)
        d, X, factors = self._score(cols, factors=True)
        ids = request_ids or [secrets.token_hex(16) for _ in requests]
        answers = render(d, self.model, factors, X)
        return [
            {"request_id": ids[i], "client_ref": request.get("client_ref"), **answers[i]}
            for i, request in enumerate(requests)
        ]

    def recommend(self, data: Any, request_id: str | None = None) -> dict[str, Any]:
        """Validate one request body and answer it; InvalidInput when it is not valid."""
        request = load_request(data)
        return self.explain([request], [request_id] if request_id else None)[0]
