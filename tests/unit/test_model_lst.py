"""Local Structure Transfer (Eq. 5-8): self-correlation, unbalanced Sinkhorn vs POT, alignment, LocConv."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glocal_cli.config import resolve_config
from glocal_cli.models.lst import (
    LocalStructureTransfer,
    LocConv,
    SelfCorrelation,
    UnbalancedSinkhorn,
    cosine_cost,
)


@pytest.mark.parametrize(("r", "d"), [(0, 1), (1, 1), (1, 2)])
def test_self_correlation_equals_naive_loop(r: int, d: int) -> None:
    torch.manual_seed(0)
    feat = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    out = SelfCorrelation(r, d)(feat)
    assert out.shape == (2, (2 * d + 1) ** 2, 5, 6)
    b, c, h, w = feat.shape

    def at(bi: int, y: int, x: int) -> torch.Tensor:
        return feat[bi, :, y, x] if 0 <= y < h and 0 <= x < w else torch.zeros(c, dtype=feat.dtype)

    for bi in range(b):
        for y in range(h):
            for x in range(w):
                for ch, (dy, dx) in enumerate((dy, dx) for dy in range(-d, d + 1) for dx in range(-d, d + 1)):
                    total = sum(
                        float(at(bi, y + py, x + px) @ at(bi, y + dy + py, x + dx + px))
                        for py in range(-r, r + 1) for px in range(-r, r + 1)
                    )
                    assert abs(float(out[bi, ch, y, x]) - total) < 1e-9


@pytest.mark.parametrize("cost_bound", [None, 1.0])
@pytest.mark.parametrize(("eps", "tau", "iters"), [(0.1, 1.0, 50), (0.05, 0.5, 200), (0.5, 10.0, 30)])
def test_sinkhorn_matches_pot(eps: float, tau: float, iters: int, cost_bound: float | None) -> None:
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(0)
    for n, m in [(5, 7), (12, 9)]:
        cost = rng.random((n, m))
        a = rng.random(n) + 0.1
        a /= a.sum()
        b = np.full(m, 1.0 / m)
        ref = ot.unbalanced.sinkhorn_unbalanced(a, b, cost, reg=eps, reg_m=tau, reg_type="kl",
                                                method="sinkhorn", numItermax=iters, stopThr=0.0)
        sink = UnbalancedSinkhorn(iters, eps, tau, cost_bound)
        assert sink.uses_kernel_product == (cost_bound is not None)
        ours = sink(torch.from_numpy(cost)[None], torch.from_numpy(a)[None],
                                                   torch.from_numpy(b)[None]).exp()[0].numpy()
        assert np.abs(ours - ref).max() < 1e-4
        # converged plans agree as well (uniform marginals, the model's default)
        ref = ot.unbalanced.sinkhorn_unbalanced(np.full(n, 1 / n), b, cost, reg=eps, reg_m=tau,
                                                reg_type="kl", numItermax=5000, stopThr=1e-12)
        ours = UnbalancedSinkhorn(3000, eps, tau, cost_bound)(torch.from_numpy(cost)[None]).exp()[0].numpy()
        assert np.abs(ours - ref).max() < 1e-4


def test_sinkhorn_batched_equals_per_sample_and_float32_under_autocast() -> None:
    torch.manual_seed(0)
    cost = torch.rand(3, 6, 6)
    sink = UnbalancedSinkhorn(20, 0.05, 1.0)
    batched = sink(cost)
    single = torch.cat([sink(cost[i:i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sink(cost.bfloat16())
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_kernel_product_path_equals_logsumexp_path_in_float32() -> None:
    torch.manual_seed(0)
    cost = torch.rand(2, 30, 40) * 2
    plain = UnbalancedSinkhorn(20, 0.03, 1.0)(cost)
    fast_sink = UnbalancedSinkhorn(20, 0.03, 1.0, cost_bound=2.0)
    assert fast_sink.uses_kernel_product
    assert torch.allclose(fast_sink(cost).exp(), plain.exp(), atol=1e-6, rtol=1e-4)
    assert not UnbalancedSinkhorn(20, 0.01, 1.0, cost_bound=2.0).uses_kernel_product


def test_cosine_cost_range() -> None:
    s, o = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    cost = cosine_cost(s, o)
    assert cost.shape == (2, 9, 9) and cost.min() >= -1e-6 and cost.max() <= 2 + 1e-6
    assert torch.allclose(torch.diagonal(cosine_cost(s, s), dim1=1, dim2=2), torch.zeros(2, 9), atol=1e-6)


def test_locconv_equals_depthwise_conv_for_shared_filters() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 5)
    weight = torch.randn(4, 1, 3, 3)
    bias = torch.randn(4)
    filters = weight.view(1, 4, 9, 1, 1).expand(2, 4, 9, 6, 5)
    out = LocConv(3, normalize=False)(x, filters, bias.view(1, 4, 1, 1).expand(2, 4, 6, 5))
    assert torch.allclose(out, F.conv2d(x, weight, bias, padding=1, groups=4), atol=1e-5)


def test_locconv_delta_filter_is_identity_of_normalised_input() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 5) * 3 + 2
    delta = torch.zeros(2, 4, 25, 6, 5)
    delta[:, :, 12] = 1
    zero = torch.zeros(2, 4, 6, 5)
    assert torch.allclose(LocConv(5, normalize=False)(x, delta, zero), x)
    normed = LocConv(5, normalize=True)(x, delta, zero)
    assert torch.allclose(normed.mean((2, 3)), torch.zeros(2, 4), atol=1e-5)
    assert torch.allclose(normed.std((2, 3), unbiased=False), torch.ones(2, 4), atol=1e-3)


def _lst() -> LocalStructureTransfer:
    cfg = resolve_config("tiny").model
    torch.manual_seed(0)
    return LocalStructureTransfer(cfg)


def test_transporting_hidden_features_equals_transporting_filters() -> None:
    lst = _lst()
    src, gen = torch.randn(2, lst.channels, 4, 3), torch.randn(2, lst.channels, 4, 3)
    with torch.no_grad():
        hidden = lst.predictor_hidden(lst.local_structure(src))
        plan = lst.alignment(src, gen)
        assert torch.allclose(plan.sum(1), torch.ones(2, 12), atol=1e-5)  # each target: convex combination
        params_src = lst.predictor_out(hidden).flatten(2)  # (B, C*k*k + C, n): f and b at source positions
        transported = torch.bmm(params_src, plan)  # Eq. 7: f_hat = TP f, b_hat = TP b
        shortcut = lst.predictor_out(torch.bmm(hidden.flatten(2), plan).view_as(hidden)).flatten(2)
    assert torch.allclose(transported, shortcut, atol=1e-5)


def test_lst_starts_near_identity_and_is_differentiable() -> None:
    lst = _lst()
    src = torch.randn(2, lst.channels, 4, 3, requires_grad=True)
    gen = torch.randn(2, lst.channels, 4, 3, requires_grad=True)
    out, plan = lst(src, gen)
    assert out.shape == gen.shape and plan.shape == (2, 12, 12)
    out.square().mean().backward()
    assert src.grad.abs().sum() > 0 and gen.grad.abs().sum() > 0
