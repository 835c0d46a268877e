"""The full-resolution pixel blend of pose transfer (``infer.full_res_blend``): what the source shows comes
from the photo itself, warped at the photo's resolution."""

from __future__ import annotations

import numpy as np

from glocal_cli.data.images import fit_to_frame
from glocal_cli.infer.composite import full_res_transfer


def _photo(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)  # fine texture a 32x24 frame cannot hold


def _frame(photo: np.ndarray, fh: int = 32, fw: int = 24):
    framed, transform = fit_to_frame(photo, fh, fw)
    warped = framed.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    return framed, transform, warped


def test_blend_one_with_identity_flow_returns_the_photo_sharp() -> None:
    photo = _photo(128, 96)
    framed, t, warped = _frame(photo)
    flow = np.zeros((2, 32, 24), np.float32)
    out = full_res_transfer(photo, framed, t, np.ones((1, 32, 24), np.float32), warped, flow)
    assert out.shape == photo.shape
    # the model's picture is its warp (m = 1): the result is the photo itself, not the 32x24 picture upsampled
    assert np.abs(out.astype(int) - photo.astype(int)).max() <= 1


def test_blend_zero_is_the_upsampled_model_picture() -> None:
    photo = _photo(128, 96)
    framed, t, warped = _frame(photo)
    flow = np.zeros((2, 32, 24), np.float32)
    result = np.full_like(framed, 77)
    out = full_res_transfer(photo, result, t, np.zeros((1, 32, 24), np.float32), warped, flow)
    assert np.abs(out.astype(int) - 77).max() <= 1  # no photo detail where m = 0


def test_a_shift_copies_the_photo_shifted_at_full_resolution() -> None:
    photo = _photo(128, 96)
    framed, t, warped = _frame(photo)
    # every target pixel samples the source one frame pixel to the right (= 4 photo pixels)
    flow = np.zeros((2, 32, 24), np.float32)
    flow[0] = 2.0 / 24
    model_warp = np.concatenate([warped[:, :, 1:], warped[:, :, -1:]], axis=2)
    result = np.rint((model_warp.transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
    out = full_res_transfer(photo, result, t, np.ones((1, 32, 24), np.float32), model_warp, flow)
    inner = out[8:-8, 8:-12].astype(int)
    assert np.abs(inner - photo[8:-8, 12:-8].astype(int)).mean() < 2.0


def test_plain_backdrop_is_painted_where_the_target_shows_background() -> None:
    import torch

    from glocal_cli.infer.config import InferConfig
    from glocal_cli.infer.pipeline import apply_backdrop, plain_backdrop

    plain = torch.full((1, 3, 32, 24), 0.9)
    plain[..., 8:24, 6:18] = -0.5  # a person in the middle of a plain studio wall
    textured = torch.rand(1, 3, 32, 24) * 2 - 1
    colour = plain_backdrop(torch.cat([plain, textured]), InferConfig(background="auto"))
    assert torch.allclose(colour[0], torch.full((3,), 0.9)) and torch.isnan(colour[1]).all()
    assert not torch.isnan(plain_backdrop(textured, InferConfig(background="plain"))).any()
    assert torch.isnan(plain_backdrop(plain, InferConfig(background="generated"))).all()
    assert torch.isnan(plain_backdrop(plain, InferConfig(background="source"))).all()  # kept, not painted
    image = torch.zeros(2, 3, 32, 24)
    person = torch.zeros(2, 1, 32, 24)
    person[..., 10:20, 8:16] = 1.0
    out = apply_backdrop(image, person, colour)
    assert torch.allclose(out[0, :, 0, 0], torch.full((3,), 0.9)) and float(out[0, :, 15, 12].abs().max()) == 0.0
    assert torch.equal(out[1], image[1])  # textured backdrop: the model's pixels are kept

    # at full resolution nothing of the photo (its person) is copied onto the backdrop
    photo = _photo(128, 96)
    framed, t, warped = _frame(photo)
    person_np = np.zeros((1, 32, 24), np.float32)
    out_full = full_res_transfer(photo, framed, t, np.ones((1, 32, 24), np.float32), warped,
                                 np.zeros((2, 32, 24), np.float32), person_np, np.array([0.9, 0.9, 0.9], np.float32))
    assert np.abs(out_full.astype(int) - round((0.9 + 1) * 127.5)).max() <= 1


def test_ghost_gate_copies_no_source_person_onto_the_target_background() -> None:
    import torch

    from glocal_cli.infer.pipeline import gate_ghost

    decoded = torch.full((1, 3, 8, 6), -0.2)  # the decoder's own wall
    warped = torch.full((1, 3, 8, 6), 0.7)  # the source photo at zero flow: its person
    blend = torch.full((1, 1, 8, 6), 0.9)
    image = torch.lerp(decoded, warped, blend)
    source_person = torch.zeros(1, 1, 8, 6)
    source_person[..., :, 3:] = 1.0  # the right half samples the source's person
    target_person = torch.zeros(1, 1, 8, 6)
    target_person[..., :4, :] = 1.0  # the top half is the target's person
    out, m = gate_ghost(image, decoded, warped, blend, source_person, target_person)
    # target background x source person: nothing copied, the decoder's picture
    assert torch.allclose(out[..., 4:, 3:], decoded[..., 4:, 3:]) and float(m[..., 4:, 3:].max()) == 0.0
    # everywhere else the blend is unchanged (the source's wall onto the wall, the person onto the person)
    keep = torch.ones(8, 6, dtype=torch.bool)
    keep[4:, 3:] = False
    assert torch.equal(out[..., keep], image[..., keep]) and torch.equal(m[..., keep], blend[..., keep])
    # with the clean plate, the removed ghost shows what stood behind the source person
    plate = torch.full((1, 3, 8, 6), 0.1)
    out_p, m_p = gate_ghost(image, decoded, warped, blend, source_person, target_person, plate)
    assert torch.allclose(out_p[..., 4:, 3:], plate[..., 4:, 3:]) and torch.equal(m_p, m)
    assert torch.equal(out_p[..., keep], image[..., keep])


def test_keep_background_shows_the_photo_where_both_show_background() -> None:
    import torch

    from glocal_cli.infer.pipeline import keep_background

    h, w = 8, 6
    photo = torch.linspace(-1, 1, 3 * h * w).reshape(1, 3, h, w)  # a textured street
    part = {"image": torch.full((1, 3, h, w), 0.3), "warped": torch.full((1, 3, h, w), 0.2),
            "blend": torch.full((1, 1, h, w), 0.4), "flow": torch.full((1, 2, h, w), 0.05),
            "person": torch.zeros(1, 1, h, w)}
    part["person"][..., :4, :] = 1.0  # the top half: the target's person
    source_person = torch.zeros(1, 1, h, w)
    source_person[..., :, 3:] = 1.0  # the right half: the source's person (the ghost gate's and the plate's)
    before = {k: v.clone() for k, v in part.items()}
    keep_background(part, photo, source_person)
    both = torch.zeros(h, w, dtype=torch.bool)
    both[4:, :3] = True  # background in the target and in the source
    assert torch.equal(part["image"][..., both], photo[..., both])
    assert torch.equal(part["warped"][..., both], photo[..., both])
    assert float(part["blend"][..., both].min()) == 1.0 and float(part["flow"][..., both].abs().max()) == 0.0
    for key in ("image", "warped", "blend", "flow"):  # the person, and the source person's place: untouched
        assert torch.equal(part[key][..., ~both], before[key][..., ~both]), key
    # at the photo's resolution the kept background is the photo itself
    frame = ((part["image"][0] + 1) * 127.5).permute(1, 2, 0).numpy()
    original = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    _, t = fit_to_frame(original, h, w)
    out = full_res_transfer(original, frame, t, part["blend"][0].numpy(), part["warped"][0].numpy(),
                            part["flow"][0].numpy())
    inner = np.zeros((h, w), bool)
    inner[6:, :2] = True  # away from the kept region's edge (bilinear upsampling mixes the neighbours)
    assert np.abs(out[inner].astype(int) - original[inner]).max() <= 1


def test_clean_plate_removes_the_source_person_from_the_background() -> None:
    import torch
    import torch.nn.functional as F

    from glocal_cli.infer.pipeline import clean_plate

    h, w = 32, 24
    yy = torch.linspace(-0.5, 0.5, h)[:, None].expand(h, w)
    background = torch.stack([yy, yy * 0.5, -yy])[None]  # a smooth street
    image = background.clone()
    labels = torch.zeros(1, h, w, dtype=torch.long)
    labels[:, 8:26, 8:16] = 2  # the person (upper clothes)
    image[:, :, 8:26, 8:16] = 0.9  # a bright coat
    parsing = F.one_hot(labels, 8).permute(0, 3, 1, 2).float()
    plate = clean_plate(image, parsing)
    person = labels[0] > 0
    assert (plate[0, :, person] - 0.9).abs().min() > 0.3  # no coat left
    assert (plate[0, :, person] - background[0, :, person]).abs().mean() < 0.15  # the street continues
    far = torch.ones(h, w, dtype=torch.bool)
    far[5:29, 5:19] = False
    assert torch.equal(plate[0, :, far], image[0, :, far])  # the background itself is kept


def test_full_res_transfer_in_row_bands_equals_one_pass() -> None:
    """Phone-size photos are blended in row bands (bounded memory): any band size gives the same picture."""
    from glocal_cli.data.images import fit_to_frame
    from glocal_cli.infer.composite import full_res_transfer

    rng = np.random.default_rng(3)
    photo = (rng.random((300, 200, 3)) * 255).astype(np.uint8)
    _, t = fit_to_frame(photo, 32, 24)
    frame = (rng.random((32, 24, 3)) * 255).astype(np.uint8)
    blend = rng.random((1, 32, 24)).astype(np.float32)
    warped = (rng.random((3, 32, 24)) * 2 - 1).astype(np.float32)
    flow = ((rng.random((2, 32, 24)) - 0.5) * 0.3).astype(np.float32)
    person = rng.random((1, 32, 24)).astype(np.float32)
    for backdrop in (None, np.array([0.9, 0.9, 0.9], np.float32)):
        whole = full_res_transfer(photo, frame, t, blend, warped, flow, person, backdrop, band_pixels=10**9)
        for band in (200 * 7, 200 * 64 + 3):
            assert np.array_equal(full_res_transfer(photo, frame, t, blend, warped, flow, person, backdrop,
                                                    band_pixels=band), whole)


def _dense_reference(photo, frame_image, t, blend, warped, flow, person=None, backdrop=None) -> np.ndarray:
    """The full-resolution blend computed densely over the whole region (no bands, no boxes)."""
    import torch
    import torch.nn.functional as F

    from glocal_cli.infer.composite import canvas_box, person_mask

    ch, cw = photo.shape[:2]
    x0, y0, x1, y1 = canvas_box(t, (ch, cw))
    fh, fw = t.frame_height, t.frame_width
    kx, ky = cw / t.resized_width, ch / t.resized_height
    fx = (np.arange(x0, x1) + 0.5) / kx - 0.5 + t.offset_x
    fy = (np.arange(y0, y1) + 0.5) / ky - 0.5 + t.offset_y
    gy, gx = np.meshgrid(fy, fx, indexing="ij")
    grid = torch.from_numpy(np.stack([(gx + 0.5) / fw * 2 - 1, (gy + 0.5) / fh * 2 - 1], -1)).float()[None]

    def up(a: np.ndarray) -> torch.Tensor:
        return F.grid_sample(torch.as_tensor(np.asarray(a, np.float32))[None], grid, mode="bilinear",
                             padding_mode="border", align_corners=False)[0]

    d = up(flow)
    cx = (gx + d[0].numpy() * fw / 2 - t.offset_x + 0.5) * kx - 0.5
    cy = (gy + d[1].numpy() * fh / 2 - t.offset_y + 0.5) * ky - 0.5
    pg = torch.from_numpy(np.stack([(cx + 0.5) / cw * 2 - 1, (cy + 0.5) / ch * 2 - 1], -1)).float()[None]
    full = F.grid_sample(torch.tensor(photo.transpose(2, 0, 1), dtype=torch.float32)[None], pg, mode="bilinear",
                         padding_mode="border", align_corners=False)[0]
    res = up(frame_image.transpose(2, 0, 1)) + up(blend).clamp(0, 1) * (full - (up(warped) + 1.0) * 127.5)
    if person is not None:
        flat = torch.as_tensor((backdrop + 1.0) * 127.5)[:, None, None]
        res = flat + person_mask(up(person)) * (res - flat)
    out = photo.copy()
    out[y0:y1, x0:x1] = np.clip(np.rint(res.permute(1, 2, 0).numpy()), 0, 255).astype(np.uint8)
    return out


def test_work_on_the_copied_pixels_and_the_person_box_only_changes_nothing() -> None:
    """The photo is warped only where the blend copies (m > 0) and, on a known backdrop, only on the target
    person's box: the result equals the dense computation pixel for pixel, in bands of any size."""
    rng = np.random.default_rng(1)
    photo = _photo(300, 190)
    framed, t, _ = _frame(photo)
    warped = rng.random((3, 32, 24)).astype(np.float32) * 2 - 1
    flow = (rng.random((2, 16, 12)).astype(np.float32) - 0.5) * 0.3
    blend = np.zeros((1, 32, 24), np.float32)
    blend[0, 8:20, 5:15] = rng.random((12, 10))
    person = np.zeros((1, 32, 24), np.float32)
    person[0, 6:22, 7:16] = rng.random((16, 9)) * 0.8 + 0.2
    backdrop = np.array([0.9, 0.8, 0.7], np.float32)
    for args in ((), (person, backdrop)):
        ref = _dense_reference(photo, framed, t, blend, warped, flow, *args)
        for band in (1 << 20, 2000):
            out = full_res_transfer(photo, framed, t, blend, warped, flow, *args, band_pixels=band)
            assert np.array_equal(out, ref)


def test_a_pale_grainy_street_wall_is_not_a_studio_wall() -> None:
    """'auto' backdrop: a wall of small spread but with grain (stone, plaster) keeps the photo; a smooth studio
    wall, even with a soft gradient, is painted flat."""
    import torch

    from glocal_cli.infer.config import InferConfig
    from glocal_cli.infer.pipeline import plain_backdrop

    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0.80, 0.95, 32)[None, None, :, None].expand(1, 3, 32, 24)  # a studio wall's gradient
    studio = ramp.clone()
    grain = 0.2 + (torch.rand(1, 1, 32, 24, generator=g) - 0.5) * 0.16  # +-10 grey levels around a pale grey
    street = grain.expand(1, 3, 32, 24).clone()
    for im in (studio, street):
        im[..., 8:24, 6:18] = -0.5  # the person
    colour = plain_backdrop(torch.cat([studio, street]), InferConfig(background="auto"))
    assert not torch.isnan(colour[0]).any() and torch.isnan(colour[1]).all()
