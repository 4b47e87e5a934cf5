"""Top factors: the closed-form occlusion equals re-running the model with each input typical."""

import numpy as np

from service.core.features import GROUP_OF, GROUPS, features
from service.core.validate import check_frame
from service.training.cohort import simulate


def matrix(rows: int, seed: int) -> np.ndarray:
    frame = simulate(rows, seed=seed).drop(columns=["outcome_band", "outcome_drop_mm"])
    return features(check_frame(frame.astype("string").fillna("")).columns)[1]


GROUP_MASK = GROUP_OF.T.astype(bool)  # groups x features


def test_attributions_equal_occlusion_by_rerunning_the_model(model):
    X = matrix(200, seed=5)
    probs = model.predict_proba(X)
    n, g = len(X), len(GROUPS)
    occluded = np.where(GROUP_MASK[None], model.fast.fill, X[:, None, :]).reshape(n * g, -1)
    p_occ = model.predict_proba(occluded).reshape(n, g, -1)
    top = probs.argmax(axis=1)
    rows = np.arange(n)
    expected = np.log(probs[rows, top])[:, None] - np.log(p_occ[rows, :, top])
    got = model.fast.attributions(X, model.predict_proba(X))
    assert got.shape == (n, g)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert np.abs(got).max() > 0.05  # the inputs do move the answer


def test_an_input_at_its_typical_value_contributes_nothing(model):
    X = np.tile(model.fast.fill, (3, 1))
    X[1, GROUP_MASK[0]] += 1.0  # move only the first group's features
    got = model.fast.attributions(X, model.predict_proba(X))
    still = np.abs(got) < 1e-12
    assert still[0].all() and still[2].all()
    assert not still[1, 0] and still[1, 1:].all()
