"""The 3D correspondence as a guide of the final pixel blend (``infer.copy_visible``, ``infer.unseen_fill``)."""

from __future__ import annotations

import pytest
import torch

from glocal_cli.body.correspond import BACKGROUND, INVISIBLE, VISIBLE
from glocal_cli.infer.mesh_guide import guide_blend, part_mean_fill


def _case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    b, h, w, parts = 2, 12, 10, 5
    source = torch.rand(b, 3, h, w, generator=g) * 2 - 1
    source_part = torch.randint(0, parts - 1, (b, h, w), generator=g)  # part 4 never shown by the source
    target_part = torch.randint(0, parts, (b, h, w), generator=g)
    classes = torch.randint(0, 3, (b, h, w), generator=g).to(torch.uint8)
    return source, source_part, target_part, classes, parts


def test_part_mean_fill_is_the_mean_of_the_source_pixels_of_the_same_part() -> None:
    source, sp, tp, classes, parts = _case()
    where = classes == INVISIBLE
    fill, filled = part_mean_fill(source, sp, tp, where, parts)
    for i in range(source.shape[0]):
        for y, x in zip(*torch.nonzero(where[i], as_tuple=True)):
            p = int(tp[i, y, x])
            shown = (sp[i] == p) & (p != 0)
            assert bool(filled[i, 0, y, x]) == bool(shown.any())
            if shown.any():
                expect = source[i][:, shown].mean(1)
                assert torch.allclose(fill[i, :, y, x], expect, atol=1e-5)
    assert not bool(filled[~where[:, None]].any())  # only where asked


def test_guide_blend_copies_visible_pixels_and_fills_unseen_ones() -> None:
    source, sp, tp, classes, parts = _case(1)
    b, _, h, w = source.shape
    g = torch.Generator().manual_seed(2)
    decoded = torch.rand(b, 3, h, w, generator=g) * 2 - 1
    warped = torch.rand(b, 3, h, w, generator=g) * 2 - 1
    blend = torch.zeros(b, 1, h, w)  # the blend head copies nothing
    image = torch.lerp(decoded, warped, blend)
    out, m, dec = guide_blend(image, decoded, warped, blend, classes, source, sp, tp, parts, "mesh", "part_mean")
    # a visible pixel whose 3x3 neighbourhood is all visible is the warped source exactly
    vis = (classes == VISIBLE).float()[:, None]
    inner = torch.nn.functional.avg_pool2d(vis, 3, 1, 1, count_include_pad=False) == 1
    inner = inner & (vis > 0)
    assert torch.allclose(out[inner.expand_as(out)], warped[inner.expand_as(warped)], atol=1e-6)
    assert bool((m[classes[:, None] != VISIBLE] == 0).all())
    # an invisible pixel of a part the source shows is that part's mean colour; the others keep the decoder's
    fill, filled = part_mean_fill(source, sp, tp, classes == INVISIBLE, parts)
    f = filled.expand_as(out)
    assert bool(f.any()) and torch.allclose(out[f], fill[f].clamp(-1, 1), atol=1e-6)
    keep = ((classes == BACKGROUND) | (classes == INVISIBLE))[:, None] & ~filled
    k = keep.expand_as(out)
    assert torch.allclose(out[k], decoded[k], atol=1e-6) and torch.equal(dec[k], decoded[k])


def test_guide_blend_model_model_changes_nothing_and_bad_modes_are_refused() -> None:
    source, sp, tp, classes, parts = _case(3)
    image = torch.rand_like(source) * 2 - 1
    blend = torch.rand(source.shape[0], 1, *source.shape[-2:])
    out, m, _ = guide_blend(image, image * 0.5, source, blend, classes, source, sp, tp, parts, "model", "model")
    assert torch.allclose(out, image.clamp(-1, 1)) and torch.equal(m, blend)
    with pytest.raises(ValueError, match="copy_visible"):
        guide_blend(image, image, source, blend, classes, source, sp, tp, parts, "always", "model")


def test_mirror_fill_takes_the_other_sides_texture_except_on_the_head() -> None:
    from glocal_cli.models.flow import warp

    source, sp, tp, classes, parts = _case(4)
    b, _, h, w = source.shape
    decoded = torch.zeros(b, 3, h, w)
    blend = torch.zeros(b, 1, h, w)
    g = torch.Generator().manual_seed(5)
    mirror_flow = (torch.rand(b, 2, h, w, generator=g) - 0.5) * 0.4
    mirror_visible = torch.rand(b, h, w, generator=g) > 0.3
    out, _, _ = guide_blend(decoded, decoded, source, blend, classes, source, sp, tp, parts, "model", "mirror",
                            mirror_flow, mirror_visible, keep_parts=(1,))
    other = warp(source, mirror_flow)
    fill, filled = part_mean_fill(source, sp, tp, classes == INVISIBLE, parts)
    use = ((classes == INVISIBLE) & mirror_visible & (tp != 1))[:, None].expand_as(out)
    assert bool(use.any()) and torch.allclose(out[use], other[use].clamp(-1, 1), atol=1e-6)
    rest = (filled & ~use[:, :1]).expand_as(out)
    assert bool(rest.any()) and torch.allclose(out[rest], fill[rest].clamp(-1, 1), atol=1e-6)
    head = ((classes == INVISIBLE) & mirror_visible & (tp == 1))[:, None] & filled
    assert bool(head.any())  # the head's unseen pixels keep the part mean even where the other side is seen


def test_mirror_strength_mixes_the_other_side_over_the_part_mean() -> None:
    source, sp, tp, classes, parts = _case(6)
    b, _, h, w = source.shape
    zeros = torch.zeros(b, 3, h, w)
    blend = torch.zeros(b, 1, h, w)
    flow = torch.zeros(b, 2, h, w)  # the other side at the same pixel: the source itself
    seen = torch.ones(b, h, w, dtype=torch.bool)
    args = (zeros, zeros, source, blend, classes, source, sp, tp, parts, "model", "mirror", flow, seen, ())
    full, _, _ = guide_blend(*args, mirror_strength=1.0)
    half, _, _ = guide_blend(*args, mirror_strength=0.5)
    none, _, _ = guide_blend(*args, mirror_strength=0.0)
    fill, filled = part_mean_fill(source, sp, tp, classes == INVISIBLE, parts)
    f = filled.expand_as(full)
    assert bool(f.any())
    assert torch.allclose(half[f], 0.5 * (full[f] + none[f]), atol=1e-6)
    assert torch.allclose(none[f], fill[f].clamp(-1, 1), atol=1e-6)


def test_the_unseen_head_takes_the_colour_of_its_parsing_class() -> None:
    """Hair on the back of a head gets the source's hair colour; a face the source never shows (a back view)
    gets the source's skin (its arms), not the hair the head part shows."""
    b, h, w, parts = 1, 6, 6, 5
    source = torch.zeros(b, 3, h, w)
    sl = torch.zeros(b, h, w, dtype=torch.long)
    sp = torch.zeros(b, h, w, dtype=torch.long)
    source[..., :2, :] = -0.8  # hair, on the source's head part
    sl[:, :2, :], sp[:, :2, :] = 1, 1
    source[..., 2:4, :] = 0.6  # bare arms
    sl[:, 2:4, :], sp[:, 2:4, :] = 6, 3
    tp = torch.ones(b, h, w, dtype=torch.long)  # the target's head fills the frame, unseen
    classes = torch.full((b, h, w), INVISIBLE, dtype=torch.uint8)
    tl = torch.full((b, h, w), 5, dtype=torch.long)  # a face...
    tl[:, :2, :] = 1  # ...under hair
    zeros = torch.zeros(b, 3, h, w)
    blend = torch.zeros(b, 1, h, w)
    out, _, _ = guide_blend(zeros, zeros, zeros, blend, classes, source, sp, tp, parts, "model", "part_mean",
                            source_labels=sl, target_labels=tl)
    assert torch.allclose(out[..., :2, :], torch.full_like(out[..., :2, :], -0.8))
    assert torch.allclose(out[..., 2:, :], torch.full_like(out[..., 2:, :], 0.6))
    # with the face shown in the source, the face takes the face's colour
    source[..., 4:, :] = 0.2
    sl[:, 4:, :], sp[:, 4:, :] = 5, 1
    out, _, _ = guide_blend(zeros, zeros, zeros, blend, classes, source, sp, tp, parts, "model", "part_mean",
                            source_labels=sl, target_labels=tl)
    assert torch.allclose(out[..., 2:, :], torch.full_like(out[..., 2:, :], 0.2))
    # without labels: the head part's mean (hair and face mixed)
    out, _, _ = guide_blend(zeros, zeros, zeros, blend, classes, source, sp, tp, parts, "model", "part_mean")
    assert torch.allclose(out[0, 0, 0, 0], (2 * -0.8 + 2 * 0.2) / 4 * torch.ones(()), atol=1e-6)
