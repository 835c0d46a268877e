"""Global Graph Reasoning (Eq. 2-4): the body-graph partition, graph filling, visible codes."""

from __future__ import annotations

import torch

from glocal_cli.models.ggr import (
    REGIONS,
    GlobalGraphReasoning,
    body_graph_partition,
    hop_distances,
    region_average_pool,
)

R = {name: i for i, name in enumerate(REGIONS)}


def test_hop_distances_from_upper_clothes() -> None:
    e = hop_distances("upper")
    assert [e[R[n]] for n in ("upper", "face", "arms", "lower", "hair", "legs", "shoes")] == [0, 1, 1, 1, 2, 2, 3]
    assert e[R["background"]] == float("inf")


def test_partition_matches_hand_computed_table() -> None:
    # rows: node i; for each neighbour j in B(i): subset 0 = root (e_j = e_i), 1 = nearer, 2 = farther
    table = {
        "background": {"background": 0},
        "hair": {"hair": 0, "face": 1},
        "upper": {"upper": 0, "face": 2, "arms": 2, "lower": 2},
        "lower": {"lower": 0, "upper": 1, "legs": 2},
        "shoes": {"shoes": 0, "legs": 1},
        "face": {"face": 0, "upper": 1, "hair": 2},
        "arms": {"arms": 0, "upper": 1},
        "legs": {"legs": 0, "lower": 1, "shoes": 2},
    }
    expected = torch.zeros(3, 8, 8)
    for i, row in table.items():
        for j, k in row.items():
            expected[k, R[i], R[j]] = 1
    assert torch.equal(body_graph_partition("upper"), expected)


def test_region_average_pool_masks_and_presence() -> None:
    feat = torch.arange(2 * 3 * 4, dtype=torch.float32).view(1, 2, 3, 4)
    masks = torch.zeros(1, 8, 3, 4)
    masks[0, 1, 0, :2] = 1  # hair: two pixels
    codes, present = region_average_pool(feat, masks)
    assert torch.allclose(codes[0, 1], feat[0, :, 0, :2].mean(-1))
    assert present[0].tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    assert torch.all(codes[0, 0] == 0)


def _ggr(use_graph: bool = True) -> GlobalGraphReasoning:
    torch.manual_seed(0)
    return GlobalGraphReasoning(channels=4, style_channels=6, steps=3, use_graph=use_graph).eval()


def test_missing_region_gets_code_from_neighbours_and_visible_keep_their_own() -> None:
    ggr = _ggr()
    codes = torch.randn(1, 8, 6)
    present = torch.ones(1, 8)
    present[0, R["arms"]] = 0
    codes[0, R["arms"]] = 0
    visible, occluded = ggr.region_codes(codes, present)
    assert visible[0, R["arms"]].abs().sum() > 0  # filled from the graph (upper clothes)
    assert torch.allclose(visible[0, R["arms"]], occluded[0, R["arms"]])
    own = codes[0, R["face"]] @ ggr.own_weight[R["face"]] + ggr.own_bias[R["face"]]
    assert torch.allclose(visible[0, R["face"]], own, atol=1e-6)  # visible regions keep their own code
    # changing another region's style does not change a present region's visible code
    codes2 = codes.clone()
    codes2[0, R["shoes"]] += 5
    visible2, occluded2 = ggr.region_codes(codes2, present)
    assert torch.allclose(visible2[0, R["face"]], visible[0, R["face"]])
    assert not torch.allclose(occluded2[0, R["legs"]], occluded[0, R["legs"]])  # the graph does propagate


def test_far_region_reached_after_enough_steps_only() -> None:
    ggr = _ggr()
    codes = torch.zeros(1, 8, 6)
    present = torch.zeros(1, 8)
    present[0, R["hair"]] = 1
    codes[0, R["hair"]] = torch.randn(6)
    _, p = ggr.graph(codes, present)  # 3 steps from hair: face, upper, {arms, lower}
    assert p[0].tolist() == [0, 1, 1, 1, 0, 1, 1, 0]


def test_condition_map_separates_visible_and_occluded() -> None:
    ggr = _ggr()
    style = torch.randn(1, 6, 4, 4)
    ss = torch.zeros(1, 8, 4, 4)
    ss[0, R["upper"]] = 1
    sg = ss.clone()
    vis = torch.ones(1, 1, 4, 4)
    vis[..., :2, :] = 0
    cond = ggr.condition_map(style, ss, sg, vis)
    codes, present = region_average_pool(style, ss)
    visible, occluded = ggr.region_codes(codes, present)
    assert torch.allclose(cond[0, :, 3, 3], visible[0, R["upper"]], atol=1e-5)
    assert torch.allclose(cond[0, :, 0, 0], occluded[0, R["upper"]], atol=1e-5)


def test_without_graph_ignores_occlusion() -> None:
    ggr = _ggr(use_graph=False)
    assert not hasattr(ggr, "graph")
    style = torch.randn(1, 6, 4, 4)
    ss = torch.zeros(1, 8, 4, 4)
    ss[0, R["upper"]] = 1
    c1 = ggr.condition_map(style, ss, ss, torch.ones(1, 1, 4, 4))
    c0 = ggr.condition_map(style, ss, ss, torch.zeros(1, 1, 4, 4))
    assert torch.allclose(c1, c0)


def test_modulation_eq4_shapes_and_batchnorm() -> None:
    ggr = _ggr().train()
    fused = torch.randn(2, 4, 4, 4)
    ss = torch.zeros(2, 8, 4, 4)
    ss[:, 2] = 1
    out = ggr(fused, torch.randn(2, 6, 4, 4), ss, ss, torch.rand(2, 1, 4, 4))
    assert out.shape == fused.shape and torch.isfinite(out).all()
