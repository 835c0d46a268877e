"""The fitted 3D bodies as a guide for the generator's final pixel blend (``infer.copy_visible``, ``infer.unseen_fill``).

The generator ends with a visibility-gated pixel blend (:class:`glocal_cli.models.decoder.PixelBlend`):
``image = lerp(decoded, warp(I_s), m) + residual``. When the pair's 3D body fits are usable, the 3D
correspondence knows, per target pixel, whether the source shows that point of the body (class
``VISIBLE``) or not (``INVISIBLE``), exactly and at the frame's resolution. Two inference-time rules use it:

* ``copy_visible='mesh'``: ``m' = max(m, visible)``, so what the source shows is copied from the source even
  where the blend head (trained on synthetic people) hesitates; on the 59 real DeepFashion pairs the
  shipped head gives m = 0.44 on average where the mesh says visible, and the decoder's picture there is a
  smear of the right colours at best.
* ``unseen_fill='part_mean'``: on the body pixels the source does not show, the decoder's picture is replaced
  by the mean colour the source shows of the same body part (the back of a shirt gets the shirt's colour):
  a flat but right-coloured fill instead of a generated texture the synthetic-trained decoder gets wrong on
  photos. Parts the source does not show at all keep the decoder's picture.
* ``unseen_fill='mirror'``: where the *other side* of the unseen body point is seen in the source
  (:func:`~glocal_cli.body.correspond.mirror_correspond`: the front of a shirt seen from the back), the source
  texture there (``mirror_strength`` of it over the part's mean colour); elsewhere (and on the head, whose
  back is no face) the part's mean colour.

* the unseen head (with either fill, when the parsings are given): the source's mean colour of the parsing
  class the target parsing gives the pixel (hair on the back of a head; the face's colour on a face, or the
  source's skin, its arms class, when the source shows no face: a back view), not the head part's mix.

These keep the blend's form: the result is ``image + (m' - m) * (warp - decoded') + (1 - m) * (decoded' -
decoded)`` i.e. ``lerp(decoded', warp, m') + residual``, the bounded residual kept as it was. Items whose fit
is flagged (the learned flow was used) are left as the model made them.
"""

from __future__ import annotations

import typing

import torch
import torch.nn.functional as F

from glocal_cli.body.correspond import INVISIBLE, VISIBLE
from glocal_cli.infer.config import CopyVisible, UnseenFill
from glocal_cli.models.flow import warp

__all__ = ["COPY_VISIBLE_MODES", "UNSEEN_FILL_MODES", "guide_blend", "part_mean_fill"]

COPY_VISIBLE_MODES: tuple[str, ...] = typing.get_args(CopyVisible)
_FACE, _ARMS = 5, 6  # parsing classes (glocal_cli.data.parsing.CLASS_NAMES)
UNSEEN_FILL_MODES: tuple[str, ...] = typing.get_args(UnseenFill)


def part_mean_fill(source: torch.Tensor, source_part: torch.Tensor, target_part: torch.Tensor,
                   where: torch.Tensor, num_parts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fill (B, 3, H, W), filled (B, 1, H, W) bool)``: at ``where`` pixels the mean colour of ``source`` over
    the source pixels of the same body part (``target_part`` of the pixel), where the source shows that part.

    ``source (B, 3, H, W)``; parts ``long (B, H, W)`` with 0 = background; ``where bool (B, H, W)``. Batched
    with one scatter (no Python loop over parts or items).
    """
    b, c = source.shape[:2]
    src = source.float().flatten(2)  # (B, 3, HW)
    sp = source_part.long().clamp(0, num_parts - 1).flatten(1)  # (B, HW)
    sums = src.new_zeros(b, c, num_parts).scatter_add_(2, sp[:, None].expand(-1, c, -1), src)
    counts = src.new_zeros(b, num_parts).scatter_add_(1, sp, torch.ones_like(sp, dtype=src.dtype))
    counts[:, 0] = 0  # the background is no body part
    means = sums / counts.clamp_min(1)[:, None]
    tp = target_part.long().clamp(0, num_parts - 1).flatten(1)
    fill = means.gather(2, tp[:, None].expand(-1, c, -1)).view_as(source)
    shown = counts.gather(1, tp).view(b, 1, *source.shape[-2:]) > 0
    return fill.to(source.dtype), where[:, None] & shown


def guide_blend(image: torch.Tensor, decoded: torch.Tensor, warped: torch.Tensor, blend: torch.Tensor,
                classes: torch.Tensor, source: torch.Tensor, source_part: torch.Tensor, target_part: torch.Tensor,
                num_parts: int, copy_visible: str = "mesh", unseen_fill: str = "part_mean",
                mirror_flow: torch.Tensor | None = None, mirror_visible: torch.Tensor | None = None,
                keep_parts: tuple[int, ...] = (1,), mirror_strength: float = 1.0,
                source_labels: torch.Tensor | None = None, target_labels: torch.Tensor | None = None,
                num_classes: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(image, blend, decoded)`` of the pixel blend re-done under the 3D correspondence (see the module docstring).

    ``image``, ``decoded``, ``warped`` ``(B, 3, H, W)`` and ``source`` (the framed source photo) in [-1, 1];
    ``blend`` ``m (B, 1, H, W)``; ``classes`` ``(B, H, W)`` background / visible / invisible; the parts ``(B, H, W)``.
    """
    if copy_visible not in COPY_VISIBLE_MODES or unseen_fill not in UNSEEN_FILL_MODES:
        raise ValueError(f"copy_visible={copy_visible!r} / unseen_fill={unseen_fill!r}: expected one of "
                         f"{COPY_VISIBLE_MODES} / {UNSEEN_FILL_MODES}")
    classes = classes.to(image.device)
    new_m = blend
    if copy_visible == "mesh":
        # a 3x3 box on the visible mask: the mesh's own outline is a pixel wide guess, so the step is eased
        visible = (classes == VISIBLE).to(blend.dtype)[:, None]
        visible = F.avg_pool2d(visible, 3, stride=1, padding=1, count_include_pad=False) * visible
        new_m = torch.maximum(blend, visible)
    new_decoded = decoded
    if unseen_fill in ("part_mean", "mirror"):
        fill, filled = part_mean_fill(source, source_part.to(image.device), target_part.to(image.device),
                                      classes == INVISIBLE, num_parts)
        new_decoded = torch.where(filled, fill.to(decoded.dtype), decoded)
    if unseen_fill == "mirror" and mirror_flow is not None and mirror_visible is not None:
        other = (classes == INVISIBLE) & mirror_visible.to(image.device)
        for p in keep_parts:  # the back of the head is no face
            other &= target_part.to(image.device) != p
        other_side = warp(source.to(decoded.dtype), mirror_flow.to(image.device, decoded.dtype))
        mixed = torch.lerp(new_decoded, other_side, mirror_strength)  # over the part mean (or the decoder's)
        new_decoded = torch.where(other[:, None], mixed, new_decoded)
    if unseen_fill != "model" and source_labels is not None and target_labels is not None and keep_parts:
        # the unseen head: the source's colour of the class the target parsing gives the pixel (hair on the
        # back of a head, the face's colour on a face), the source's skin (arms) for a face it never shows
        head = (classes == INVISIBLE) & (target_part.to(image.device) == keep_parts[0])
        tl = target_labels.to(image.device).long()
        sl = source_labels.to(image.device).long()
        no_face = ~(sl == _FACE).flatten(1).any(1)[:, None, None]
        tl = torch.where((tl == _FACE) & no_face, torch.full_like(tl, _ARMS), tl)
        fill, filled = part_mean_fill(source, sl, tl, head & (tl > 0), num_classes)
        new_decoded = torch.where(filled, fill.to(decoded.dtype), new_decoded)
    out = image + (new_m - blend) * (warped - new_decoded) + (1.0 - blend) * (new_decoded - decoded)
    return out.clamp(-1, 1), new_m, new_decoded
