"""Inception Score equals its formula on synthetic logits."""

from __future__ import annotations

import numpy as np
import pytest

from glocal_cli.errors import InputError
from glocal_cli.metrics.inception_score import inception_score, inception_score_from_probs


def _formula(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) on consecutive parts, written out with plain loops."""
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n = len(p)
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        py = part.mean(axis=0)
        kls = [sum(q[k] * (np.log(q[k]) - np.log(py[k])) for k in range(len(q))) for q in part]
        scores.append(np.exp(np.mean(kls)))
    return float(np.mean(scores)), float(np.std(scores))


@pytest.mark.parametrize("n", [50, 53])
def test_inception_score_equals_formula(n):
    logits = np.random.default_rng(n).normal(scale=3.0, size=(n, 12))
    mean, std = inception_score(logits, splits=10)
    ref_mean, ref_std = _formula(logits, 10)
    assert mean == pytest.approx(ref_mean, rel=1e-10)
    assert std == pytest.approx(ref_std, rel=1e-8, abs=1e-12)


def test_inception_score_limits():
    k = 7
    uniform = np.full((20, k), 1.0 / k)
    assert inception_score_from_probs(uniform, splits=2)[0] == pytest.approx(1.0)
    one_hot = np.eye(k)[np.arange(3 * k) % k]  # confident and evenly spread: IS = number of classes seen
    mean, _ = inception_score_from_probs(one_hot, splits=1)
    assert mean == pytest.approx(k, rel=1e-9)
    with pytest.raises(InputError, match="at least 10"):
        inception_score(np.zeros((5, 3)), splits=10)
