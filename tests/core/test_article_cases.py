"""The people of the founding article get the answer a careful clinician would expect."""

import pytest

from service.training.cases import check_case, load_cases

ALL = load_cases()


@pytest.mark.parametrize("case", ALL, ids=[c["id"] for c in ALL])
def test_article_case_holds_with_the_trained_model(case, recommender):
    assert check_case(case, recommender.recommend(case["request"])) == []


@pytest.mark.parametrize("case", ALL, ids=[c["id"] for c in ALL])
def test_article_case_holds_with_the_rules_alone(case, rules_only):
    assert check_case(case, rules_only.recommend(case["request"])) == []


def test_there_are_at_least_twelve_article_cases():
    assert len(ALL) >= 12
