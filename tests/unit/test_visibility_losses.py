"""Self-supervised visibility (issue 13, item 1): the photometric target and the masked BCE."""

from __future__ import annotations

import torch

from glocal_cli.losses.flow import photometric_visibility_target, visibility_loss


def test_photometric_target_marks_what_the_warp_reproduces():
    """Target = source shifted right by 2 px, except a block the source never shows: with the exact
    flow the shifted pixels are visible and the block is not; with the identity flow most are not."""
    torch.manual_seed(0)
    src = torch.rand(1, 3, 16, 12) * 2 - 1
    tgt = torch.roll(src, shifts=2, dims=-1)
    tgt[..., 4:8, 6:10] = 0.9  # new content
    flow = torch.zeros(1, 2, 16, 12)
    flow[:, 0] = -2 * 2.0 / 12  # target (c) samples source (c - 2): normalised offset
    vis = photometric_visibility_target(src, tgt, flow, threshold=0.2)
    assert vis.shape == (1, 1, 16, 12)
    inside = torch.ones(16, 12, dtype=torch.bool)
    inside[:, :2] = False  # the two left columns come from the roll's wrap-around
    inside[4:8, 6:10] = False
    assert vis[0, 0][inside].mean() == 1.0
    assert vis[0, 0, 4:8, 6:10].mean() < 0.2  # the new block: invisible (a random source pixel rarely matches 0.9)
    identity = photometric_visibility_target(src, tgt, torch.zeros_like(flow), threshold=0.2)
    assert identity[0, 0][inside].mean() < 0.5


def test_visibility_loss_is_masked_and_resized():
    vis = torch.full((1, 1, 4, 3), 0.5, requires_grad=True)
    target = torch.zeros(1, 1, 8, 6)
    target[..., :4, :] = 1.0
    valid = torch.zeros(1, 1, 8, 6)
    valid[..., :4, :] = 1.0  # only the visible half counts
    loss = visibility_loss(vis, target, valid)
    assert torch.isclose(loss, torch.log(torch.tensor(2.0)))
    loss.backward()
    # pushed up where valid only: output rows 0-3 read input rows 0-2 (bilinear), row 3 gets nothing
    assert vis.grad[0, 0, :2].sum() < 0 and vis.grad[0, 0, 3].abs().sum() == 0
    assert visibility_loss(vis, target, torch.zeros_like(valid)) == 0
