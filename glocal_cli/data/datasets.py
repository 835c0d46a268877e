"""Training and validation data: source/target pairs over a prepared dataset folder.

:class:`PairDataset` reads one ``(source, target)`` pair of a split of a
:class:`~glocal_cli.data.layout.PreparedDataset` per item: both images scaled to [-1, 1], both
poses (keypoints; heatmaps are drawn batched on the device by :func:`batch_to_device`), both
parsing label maps when the folder has them, the ground-truth flow target -> source and its
visibility when the folder has surface maps (SynthPeople) or per-pair correspondence files (fitted
3D bodies), and an inpainting hole when asked.

Randomness (flip, masks) is drawn from a per-sample seed that :class:`PairSampler` hands over with
each index, derived from ``(seed, epoch, global position in the epoch)``: a run is reproducible
whatever the number of workers or processes, and a resumed run sees exactly the samples (and the
augmentations) that an uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from glocal_cli.data.correspondence import (
    INVISIBLE,
    VISIBLE,
    load_correspondence,
    load_surface,
    pair_correspondence,
)
from glocal_cli.data.images import load_image
from glocal_cli.data.keypoints import pose_heatmaps_torch
from glocal_cli.data.layout import PreparedDataset
from glocal_cli.data.masks import irregular_mask, sample_training_mask
from glocal_cli.data.parsing import NUM_CLASSES, one_hot_torch, read_parsing
from glocal_cli.data.prefill import prefill_tensor
from glocal_cli.errors import DataError, InputError

__all__ = [
    "PairDataset",
    "PairSampler",
    "batch_to_device",
    "make_loader",
    "open_dataset",
    "sample_seed",
]

_MASK_KINDS = ("irregular", "semantic", "mixed")


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 63-bit seed for the sample at global ``position`` of ``epoch`` (SplitMix64-style mixing)."""
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9 + int(position) * 0x94D049BB133111EB)
    x &= (1 << 64) - 1
    x ^= x >> 31
    x = (x * 0xD6E8FEEBDA1B1C6D) & ((1 << 64) - 1)
    x ^= x >> 29
    return x >> 1


def open_dataset(root: str | Path, height: int | None = None, width: int | None = None) -> PreparedDataset:
    """Open and validate a prepared dataset folder; check its frame against the config's."""
    ds = PreparedDataset(root)
    if height is not None and width is not None and (ds.height, ds.width) != (height, width):
        raise DataError(
            f"{ds.root / 'manifest.json'}: images are {ds.height}x{ds.width} but the config's frame is "
            f"{height}x{width} (use a matching preset or --set data.height={ds.height} --set data.width={ds.width})"
        )
    return ds


@dataclass(frozen=True)
class _Pair:
    source: str
    target: str


class PairDataset(Dataset):
    """``(source, target)`` pairs of one split of a prepared dataset.

    Each item is a dict of tensors:

    * ``source_image``, ``target_image``: ``float32 (3, H, W)`` in [-1, 1];
    * ``source_xy``, ``target_xy``: ``float32 (18, 2)`` keypoints ``(x, y)`` in pixels;
      ``source_visible``, ``target_visible``: ``bool (18,)``;
    * ``source_labels``, ``target_labels``: ``int64 (H, W)`` parsing classes (only with parsing);
    * ``flow``: ``float32 (2, H, W)`` ground-truth flow target -> source in normalised
      ``grid_sample`` offsets, ``flow_valid``: ``float32 (1, H, W)`` 1 where the target pixel is on
      the body and seen in the source (only with ground truth and ``with_flow``); with per-pair
      correspondence files also ``flow_body``: ``float32 (1, H, W)`` 1 where the file labels the pixel
      (visible or invisible: the visibility target is known there); all three are 0 for a pair
      without a file. Surface maps (SynthPeople) win over correspondence files when a folder has both;
      with ``flow_body`` surface maps give ``flow_body`` too (the target's body pixels), so that their
      items have the keys of correspondence-file items (a batch mixing both kinds);
    * ``mask``: ``float32 (1, H, W)``, 1 = hole (only with ``mask_kind``);
    * ``prefilled``: ``float32 (3, H, W)``, the source image with the hole filled classically (only with
      ``mask_kind`` and ``prefill``; :func:`glocal_cli.data.prefill.prefill_tensor`);
    * ``index``: ``int64`` pair index.

    ``key`` may be an int or ``(index, sample_seed)`` (what :class:`PairSampler` yields). ``pairs``
    replaces the split's ``pairs-<split>.csv`` (e.g. a validation split held in memory); pairs that touch
    a name of ``exclude`` are left out (the training pairs of the validation people). ``parsing=False``
    leaves the parsing maps out even when the folder has them (the items then have the keys of a
    dataset without parsing, for a batch that mixes both: :mod:`glocal_cli.data.mix`).
    """

    def __init__(
        self,
        dataset: PreparedDataset | str | Path,
        split: str = "train",
        flip_prob: float = 0.0,
        limit: int | None = None,
        with_flow: bool = False,
        mask_kind: str | None = None,
        semantic_mask_prob: float = 0.5,
        prefill: bool = False,
        seed: int = 0,
        pairs: Sequence[tuple[str, str]] | None = None,
        exclude: Iterable[str] = (),
        parsing: bool = True,
        flow_body: bool = False,
    ) -> None:
        self.dataset = dataset if isinstance(dataset, PreparedDataset) else PreparedDataset(dataset)
        ds = self.dataset
        self.split = split
        self.height, self.width = ds.height, ds.width
        self.flip_prob = float(flip_prob)
        self.has_parsing = ds.has_parsing and bool(parsing)
        self.with_flow = bool(with_flow and (ds.has_surface or ds.has_correspondence))
        self.flow_from = "surface" if ds.has_surface else "correspondence"
        self.flow_body = bool(flow_body)
        if mask_kind is not None and mask_kind not in _MASK_KINDS:
            raise ValueError(f"mask_kind {mask_kind!r} must be one of {_MASK_KINDS}")
        self.mask_kind = mask_kind
        self.semantic_mask_prob = semantic_mask_prob
        self.prefill = bool(prefill)
        self.seed = int(seed)
        pairs = list(ds.pairs(split) if pairs is None else pairs)
        left_out = set(exclude)
        if left_out:
            pairs = [(a, b) for a, b in pairs if a not in left_out and b not in left_out]
        if limit is not None:
            pairs = pairs[: max(int(limit), 0)]
        if not pairs:
            raise DataError(f"{ds.root / f'pairs-{split}.csv'}: no pairs; cannot train or validate on an empty split")
        keypoints = ds.keypoints()
        for a, b in pairs:
            for name in (a, b):
                if name not in keypoints:
                    raise DataError(f"{ds.keypoints_path}: no keypoints for {name!r} (used in pairs-{split}.csv)")
        self.pairs = [_Pair(a, b) for a, b in pairs]
        self._keypoints = keypoints

    def __len__(self) -> int:
        return len(self.pairs)

    # -- reading

    def _image(self, name: str) -> np.ndarray:
        try:
            img = load_image(self.dataset.image_path(name))
        except InputError as exc:
            raise DataError(str(exc)) from None
        if img.shape[:2] != (self.height, self.width):
            raise DataError(
                f"{self.dataset.image_path(name)}: image is {img.shape[0]}x{img.shape[1]}, the manifest says "
                f"{self.height}x{self.width}"
            )
        return img

    def _labels(self, name: str) -> np.ndarray:
        try:
            labels = read_parsing(self.dataset.parsing_path(name))
        except InputError as exc:
            raise DataError(str(exc)) from None
        if labels.shape != (self.height, self.width):
            raise DataError(f"{self.dataset.parsing_path(name)}: parsing is {labels.shape}, expected "
                            f"{self.height}x{self.width}")
        return labels

    def _flow(self, target: str, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """GT flow target -> source ``(2, H, W)`` in normalised offsets, validity ``(1, H, W)`` and the target's
        body pixels ``(1, H, W)`` (where the surface map labels a body part)."""
        try:
            surf_t = load_surface(self.dataset.surface_path(target))
            surf_s = load_surface(self.dataset.surface_path(source))
        except InputError as exc:
            raise DataError(str(exc)) from None
        corr = pair_correspondence(surf_t, surf_s)
        flow, valid = _pixel_flow_to_normalised(corr.flow, corr.visible, self.height, self.width)
        return flow, valid, (surf_t.part > 0).astype(np.float32)[None]

    def _pair_file(self, target: str, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """GT flow ``(2, H, W)`` (normalised), visible ``(1, H, W)`` and labelled ``(1, H, W)`` from the pair's
        correspondence file (3D body fits); all zero when the pair has no file (no ground truth)."""
        path = self.dataset.correspondence_path(target, source)
        h, w = self.height, self.width
        if not path.is_file():
            zero = np.zeros((1, h, w), np.float32)
            return np.zeros((2, h, w), np.float32), zero, zero
        try:
            maps = load_correspondence(path)
        except InputError as exc:
            raise DataError(str(exc)) from None
        if maps.visibility.shape != (h, w):
            raise DataError(f"{path}: correspondence is {maps.visibility.shape[0]}x{maps.visibility.shape[1]}, "
                            f"the manifest says {h}x{w}")
        flow, valid = _pixel_flow_to_normalised(maps.flow, maps.visibility == VISIBLE, h, w)
        labelled = ((maps.visibility == VISIBLE) | (maps.visibility == INVISIBLE)).astype(np.float32)[None]
        return flow, valid, labelled

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(key, tuple):
            index, seed = int(key[0]), int(key[1])
        else:
            index, seed = int(key), sample_seed(self.seed, 0, int(key))
        rng = np.random.default_rng(seed)
        pair = self.pairs[index]
        flip = self.flip_prob > 0 and bool(rng.random() < self.flip_prob)
        item: dict[str, Any] = {"index": torch.tensor(index, dtype=torch.int64)}
        for role, name in (("source", pair.source), ("target", pair.target)):
            img = self._image(name)
            pose = self._keypoints[name].clip_to_frame(self.height, self.width)
            if flip:
                img = img[:, ::-1]
                pose = pose.flip(self.width)
            pixels = torch.from_numpy(np.require(img, requirements=["C", "W"]))
            item[f"{role}_image"] = pixels.permute(2, 0, 1).float() / 127.5 - 1.0
            item[f"{role}_xy"] = torch.from_numpy(pose.xy.astype(np.float32))
            item[f"{role}_visible"] = torch.from_numpy(pose.visible.copy())
            if self.has_parsing:
                labels = self._labels(name)
                if flip:  # the 8 canonical classes have no left/right variants: a mirror is enough
                    labels = labels[:, ::-1]
                item[f"{role}_labels"] = torch.from_numpy(np.require(labels, requirements=["C", "W"])).long()
        if self.with_flow:
            maps: dict[str, np.ndarray] = {}
            if self.flow_from == "surface":
                maps["flow"], maps["flow_valid"], body = self._flow(pair.target, pair.source)
                if self.flow_body:
                    maps["flow_body"] = body
            else:
                maps["flow"], maps["flow_valid"], maps["flow_body"] = self._pair_file(pair.target, pair.source)
            if flip:  # mirror the maps; a mirrored offset points the other way along x
                maps = {k: v[:, :, ::-1].copy() for k, v in maps.items()}
                maps["flow"][0] = -maps["flow"][0]
            for key, value in maps.items():
                item[key] = torch.from_numpy(np.require(value, requirements=["C", "W"]))
        if self.mask_kind is not None:
            item["mask"] = torch.from_numpy(self._mask(rng, item.get("source_labels")))[None].float()
            if self.prefill:
                item["prefilled"] = prefill_tensor(item["source_image"], item["mask"])
        return item

    def _mask(self, rng: np.random.Generator, labels: torch.Tensor | None) -> np.ndarray:
        parsing = labels.numpy() if labels is not None else None
        if self.mask_kind == "irregular" or parsing is None:
            return irregular_mask(self.height, self.width, None, rng)
        prob = 1.0 if self.mask_kind == "semantic" else self.semantic_mask_prob
        return sample_training_mask(self.height, self.width, rng, parsing=parsing, semantic_prob=prob)


def _pixel_flow_to_normalised(
    flow_px: np.ndarray, visible: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets ``(H, W, 2)`` or ``(2, H, W)`` -> ``float32 (2, H, W)`` normalised offsets + ``(1, H, W)``.

    ``align_corners=False``: one pixel is ``2 / W`` (x) or ``2 / H`` (y) in normalised units.
    """
    f = np.asarray(flow_px, dtype=np.float32)
    if f.ndim == 3 and f.shape[-1] == 2 and f.shape[0] != 2:
        f = np.moveaxis(f, -1, 0)
    vis = np.asarray(visible).astype(np.float32).reshape(1, height, width)
    f = np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)
    out = np.empty((2, height, width), np.float32)
    out[0] = f[0] * (2.0 / width)
    out[1] = f[1] * (2.0 / height)
    return out * vis, vis


class PairSampler(Sampler):
    """Shuffled, sharded, resumable sampler yielding ``(index, sample_seed)``.

    Like :class:`torch.utils.data.DistributedSampler` (``set_epoch``, one shard per rank, the epoch
    permutation a function of ``seed + epoch`` only) but it drops the incomplete last global batch,
    can start part-way through an epoch (:meth:`set_position`) and hands a per-sample seed derived
    from the sample's *global* position so that 1 process with batch 2B and 2 processes with batch B
    see the same samples with the same augmentations.
    """

    def __init__(self, size: int, batch_size: int, num_replicas: int = 1, rank: int = 0, shuffle: bool = True,
                 seed: int = 0) -> None:
        self.size = int(size)
        self.batch_size = int(batch_size)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0
        self.position = 0  # batches of this epoch already consumed
        global_batch = self.batch_size * self.num_replicas
        self.batches_per_epoch = self.size // global_batch
        if self.batches_per_epoch < 1:
            raise DataError(
                f"only {self.size} training pairs for a global batch of {global_batch} "
                f"({self.num_replicas} process(es) x {self.batch_size}); use a smaller --batch-size or more data"
            )

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch`` (and restart at its first batch)."""
        self.epoch = int(epoch)
        self.position = 0

    def set_position(self, batches: int) -> None:
        """Skip the first ``batches`` batches of the current epoch (resuming mid-epoch)."""
        self.position = int(batches)

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.position) * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        gb = self.batch_size * self.num_replicas
        for b in range(self.position, self.batches_per_epoch):
            for j in range(self.batch_size):
                # global position: batch b, the rank's slot interleaved like DistributedSampler
                pos = b * gb + j * self.num_replicas + self.rank
                yield order[pos], sample_seed(self.seed, self.epoch, pos)


def make_loader(dataset: PairDataset, sampler: Sampler | None, batch_size: int, workers: int, pin_memory: bool,
                drop_last: bool = True) -> DataLoader:
    """A DataLoader that never touches the global torch RNG (resume-exact) and keeps workers alive."""
    gen = torch.Generator()
    gen.manual_seed(0)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        persistent_workers=False,
        generator=gen,
        prefetch_factor=4 if workers > 0 else None,
    )


def batch_to_device(batch: dict[str, Any], device: torch.device, sigma: float, height: int, width: int,
                    channels_last: bool = False) -> dict[str, torch.Tensor]:
    """Move a collated batch to ``device`` and draw what is cheaper there than in a worker.

    Adds ``source_pose``/``target_pose`` ``(B, 18, H, W)`` heatmaps and, with parsing,
    ``source_parsing``/``target_parsing`` ``(B, 8, H, W)`` one-hot maps. Copies are non-blocking
    (pinned memory), so this never waits for the device.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device, non_blocking=True)
    for role in ("source", "target"):
        pose = pose_heatmaps_torch(out[f"{role}_xy"], out[f"{role}_visible"], height, width, sigma)
        out[f"{role}_pose"] = pose
        if f"{role}_labels" in out:
            out[f"{role}_parsing"] = one_hot_torch(out[f"{role}_labels"], NUM_CLASSES)
    if channels_last and device.type == "cuda":
        for key in ("source_image", "target_image", "source_pose", "target_pose", "source_parsing",
                    "target_parsing"):
            if key in out:
                out[key] = out[key].contiguous(memory_format=torch.channels_last)
    return out


def epochs_for(steps: int, batches_per_epoch: int) -> int:
    """Epochs needed to run ``steps`` batches."""
    return math.ceil(steps / max(batches_per_epoch, 1))
