"""Batch scoring of CSV and Parquet files (placeholder until the batch scorer lands)."""

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `score` subcommand."""
    score = sub.add_parser("score", help="score a CSV or Parquet file of requests")
    score.set_defaults(func=lambda args, config: 2)


__all__ = ["argparse", "register"]
