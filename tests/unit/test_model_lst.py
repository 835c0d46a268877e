"""Local Structure Transfer (Eq. 5-8): self-correlation, unbalanced Sinkhorn and Eq. 7 vs POT, LocConv, init."""

from __future__ import annotations

import dataclasses
import math

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
    channel_normalize,
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


def _lst(**changes: object) -> LocalStructureTransfer:
    cfg = dataclasses.replace(resolve_config("tiny").model, **changes)
    torch.manual_seed(0)
    return LocalStructureTransfer(cfg)


def _source_params(lst: LocalStructureTransfer, src: torch.Tensor) -> torch.Tensor:
    """The predicted ``f`` and ``b`` at the source positions, ``(B, C*k*k + C, n)`` (Eq. 5 + 1x1 convs)."""
    return lst.predictor_out(lst.predictor_hidden(lst.local_structure(src))).flatten(2)


@pytest.mark.parametrize("norm", ["mass", "received"])
def test_transporting_hidden_features_equals_transporting_filters(norm: str) -> None:
    lst = _lst(lst_plan_norm=norm)
    src, gen = torch.randn(2, lst.channels, 4, 3), torch.randn(2, lst.channels, 4, 3)
    with torch.no_grad():
        hidden = lst.predictor_hidden(lst.local_structure(src))
        plan = lst.alignment(src, gen)
        mass = plan.sum(1)
        if norm == "received":
            assert torch.allclose(mass, torch.ones(2, 12), atol=1e-5)  # each target: convex combination
        else:  # the unbalanced plan's target side: received mass per unit of nominal mass, not all 1
            assert (mass - 1).abs().max() > 0.05
        transported = torch.bmm(_source_params(lst, src), plan)  # Eq. 7: f_hat = TP f, b_hat = TP b
        f, b = lst.predict(torch.bmm(hidden.flatten(2), plan).view_as(hidden),
                           None if norm == "received" else mass.view(2, 1, 4, 3))
        shortcut = torch.cat([f.flatten(1, 2), b], 1).flatten(2)
    assert torch.allclose(transported, shortcut, atol=1e-5)


@pytest.mark.parametrize("norm", ["mass", "received"])
def test_lst_forward_is_eq7_with_pots_unbalanced_plan(norm: str) -> None:
    """The whole LST against Eq. 6-8 built from POT's plan: ``f_hat_j = sum_i TP_ij f_i / beta_j`` ('mass').

    Fails with the column-normalised ('received') plan under 'mass', and conversely: the received mass
    differs from ``beta_j`` by more than 5 % here, which moves the output far beyond the tolerance.
    """
    ot = pytest.importorskip("ot")
    lst = _lst(lst_plan_norm=norm)
    torch.manual_seed(1)
    src, gen = torch.randn(2, lst.channels, 4, 3), torch.randn(2, lst.channels, 4, 3)
    cfg, c, kk = resolve_config("tiny").model, lst.channels, lst.k * lst.k
    with torch.no_grad():
        out, _ = lst(src, gen)
        params = _source_params(lst, src).double()
        cost = cosine_cost(src, gen).double().numpy()
    n = m = 12
    for bi in range(2):
        tp = ot.unbalanced.sinkhorn_unbalanced(np.full(n, 1 / n), np.full(m, 1 / m), cost[bi],
                                               reg=cfg.sinkhorn_epsilon, reg_m=cfg.sinkhorn_tau, reg_type="kl",
                                               method="sinkhorn", numItermax=cfg.sinkhorn_iters, stopThr=0.0)
        assert np.abs(tp.sum(0) * m - 1).max() > 0.05  # the target side of the plan is not uniform
        refs = {}
        for name, weights in [("mass", tp * m), ("received", tp / tp.sum(0, keepdims=True))]:
            aligned = params[bi] @ torch.from_numpy(weights)  # (C*k*k + C, m)
            f, b = aligned[: c * kk].view(1, c, kk, 4, 3), aligned[c * kk:].view(1, c, 4, 3)
            refs[name] = LocConv(lst.k)(gen[bi:bi + 1].double(), f, b)[0]
        assert torch.allclose(out[bi].double(), refs[norm], atol=1e-4)
        other = refs["received" if norm == "mass" else "mass"]
        assert (out[bi].double() - other).abs().max() > 1e-2


def test_poorly_matched_target_receives_little_mass() -> None:
    """A target position unlike every source position (cost 2) gets a small filter under 'mass' only."""
    base = torch.zeros(1, 16, 4, 3)
    base[:, 0] = 1.0
    src = base + 0.05 * torch.randn(1, 16, 4, 3, generator=torch.Generator().manual_seed(0))
    gen = base.clone()
    gen[0, 0, 1, 1] = -1.0  # anti-parallel to every source feature
    masses = {}
    for norm in ("mass", "received"):
        with torch.no_grad():
            masses[norm] = _lst(lst_plan_norm=norm, max_channels=16).alignment(src, gen).sum(1).view(4, 3)
    assert torch.allclose(masses["received"], torch.ones(4, 3), atol=1e-5)
    lonely, others = masses["mass"][1, 1], torch.cat([masses["mass"].flatten()[:4], masses["mass"].flatten()[5:]])
    assert lonely < 0.3 and others.min() > 0.8, masses["mass"]


@pytest.mark.parametrize("norm", ["mass", "received"])
def test_lst_at_initialisation_is_the_identity_on_normalised_features(norm: str) -> None:
    """Identity at init: ``LST(F_s, F_o) = s_j * (F_o - mu) / sigma`` (``s_j`` the received mass, 1 for
    'received'), because the predictor's constant term is a centre-tap delta filter and zero bias.

    Exact (1e-5) with the final layer's weight zeroed; with the real init (that weight scaled by 0.1)
    within 10 % relative (measured 1-3 % at the tiny and 256x176 presets; a wrong tap gives ~140 %).
    """
    lst = _lst(lst_plan_norm=norm)
    torch.manual_seed(2)
    src, gen = torch.randn(2, lst.channels, 4, 3), torch.randn(2, lst.channels, 4, 3) * 3 + 1
    with torch.no_grad():
        out, plan = lst(src, gen)
        mass = plan.sum(1).view(2, 1, 4, 3)
        expected = channel_normalize(gen) * (mass if norm == "mass" else 1.0)
        assert (out - expected).norm() / expected.norm() < 0.1
        lst.predictor_out.weight.zero_()
        exact, _ = lst(src, gen)
    assert torch.allclose(exact, expected, atol=1e-5)


def test_lst_is_differentiable() -> None:
    lst = _lst()
    src = torch.randn(2, lst.channels, 4, 3, requires_grad=True)
    gen = torch.randn(2, lst.channels, 4, 3, requires_grad=True)
    out, plan = lst(src, gen)
    assert out.shape == gen.shape and plan.shape == (2, 12, 12)
    out.square().mean().backward()
    assert src.grad.abs().sum() > 0 and gen.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lst.parameters())


def test_received_mass_is_resolution_independent_with_probability_masses() -> None:
    """docs/design.md: uniform cost ``c`` -> every target receives ``exp(-c / (eps + 2 tau))`` of ``beta_j``,
    whatever the map size (with masses ``1/n``; unit masses would make it grow as ``n^(eps/(eps+2 tau))``)."""
    eps, tau, c = 0.05, 1.0, 0.7
    for n in (12, 300):
        plan = UnbalancedSinkhorn(500, eps, tau)(torch.full((1, n, n), c, dtype=torch.float64)).exp()
        assert torch.allclose(plan.sum(1) * n, torch.full((1, n), math.exp(-c / (eps + 2 * tau)),
                                                            dtype=torch.float64), rtol=1e-6)
