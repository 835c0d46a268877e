"""Training on several prepared datasets at once: the mixed dataset and its sampler.

:class:`MixedPairDataset` puts the :class:`~glocal_cli.data.datasets.PairDataset` of each dataset
behind one index space (dataset 0's pairs first, then dataset 1's, ...). :class:`MixedSampler` draws,
for every global position of an epoch, the dataset with the mix weights and then an item of it; every
item of a batch may come from another dataset, so the item dicts of the parts must have the same keys
(the trainer asks every part for the same keys: see docs/training.md, "Training on several datasets").

The draws follow the same contract as :class:`~glocal_cli.data.datasets.PairSampler`: a function of
``(seed, epoch)`` only, resumable at any batch of an epoch (``set_epoch`` + ``set_position``), one share
per process interleaved like ``DistributedSampler`` (rank ``r`` of ``R`` gets the global positions
``b * R * batch + j * R + r``), and a per-sample seed from the sample's *global* position, so that
1 process with batch 2B and 2 processes with batch B train on the same items with the same
augmentations.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from glocal_cli.data.datasets import PairDataset, PairSampler, sample_seed

__all__ = ["MixedPairDataset", "MixedSampler", "dataset_labels", "mix_probabilities"]

_DRAW_TAG = 1
"""Seed-sequence tag of the per-epoch dataset draws (kept apart from the per-sample seeds)."""
_ORDER_TAG = 2
"""Seed-sequence tag of the per-dataset item orders."""


def dataset_labels(roots: Sequence[str | Path]) -> list[str]:
    """A short, unique name per dataset folder, for metric names and log lines: the folder's name
    (``data/market-128`` -> ``market-128``), with ``-2``, ``-3``, ... appended where names repeat."""
    labels: list[str] = []
    for root in roots:
        base = Path(root).name or str(root)
        label, n = base, 1
        while label in labels:
            n += 1
            label = f"{base}-{n}"
        labels.append(label)
    return labels


def mix_probabilities(weights: Sequence[float], sizes: Sequence[int]) -> tuple[float, ...]:
    """The probability of drawing an item from each dataset: ``weights`` normalised to sum 1, or, when
    ``weights`` is empty, each dataset's share of the training pairs (``sizes``)."""
    raw = [float(w) for w in weights] if len(weights) else [float(s) for s in sizes]
    if len(raw) != len(sizes):
        raise ValueError(f"{len(raw)} mix weights for {len(sizes)} datasets")
    if any(not w > 0 for w in raw):
        raise ValueError(f"mix weights {raw} must all be > 0")
    total = sum(raw)
    return tuple(w / total for w in raw)


class MixedPairDataset(Dataset):
    """The pairs of several :class:`PairDataset` behind one index: index ``i`` is item ``i - offset[k]`` of
    part ``k`` (``offset[k]`` = the sizes of the parts before it). Keys are ``(index, sample_seed)`` as
    :class:`MixedSampler` yields them (or a plain index). Each item keeps its part's ``index``."""

    def __init__(self, parts: Sequence[PairDataset]) -> None:
        if not parts:
            raise ValueError("MixedPairDataset needs at least one dataset")
        self.parts = list(parts)
        self.sizes = [len(p) for p in self.parts]
        self.offsets = np.cumsum([0, *self.sizes]).tolist()

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """``(part, index within the part)`` of a global index."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} mixed pairs")
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return part, index - int(self.offsets[part])

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(key, tuple):
            part, local = self.locate(int(key[0]))
            return self.parts[part][(local, int(key[1]))]
        part, local = self.locate(int(key))
        return self.parts[part][local]


class MixedSampler(PairSampler):
    """Shuffled, sharded, resumable sampler over a :class:`MixedPairDataset`, yielding ``(index, sample_seed)``.

    An epoch has ``sum(sizes)`` global positions (``epoch_size``), of which the incomplete last global
    batch is dropped. Position ``p`` of epoch ``e`` draws its dataset ``k`` with the probabilities
    ``weights`` (numpy's generator seeded by ``(seed, e)``), and the ``c``-th draw of dataset ``k`` in the
    epoch takes item ``c mod n_k`` of a permutation of that dataset seeded by ``(seed, e, k, c // n_k)``:
    within an epoch a dataset hands out all its items before it repeats one.
    """

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], batch_size: int, num_replicas: int = 1,
                 rank: int = 0, seed: int = 0, epoch_size: int | None = None) -> None:
        self.sizes = [int(s) for s in sizes]
        if not self.sizes or any(s < 1 for s in self.sizes):
            raise ValueError(f"MixedSampler: dataset sizes {self.sizes} must be >= 1")
        self.weights = mix_probabilities(weights, self.sizes)
        self.offsets = np.cumsum([0, *self.sizes])[:-1]
        # batches per epoch, sharding, the resume position and its errors: PairSampler's, over epoch_size positions
        super().__init__(sum(self.sizes) if epoch_size is None else int(epoch_size), batch_size, num_replicas, rank,
                         True, seed)
        self.epoch_size = self.size

    def draws(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(dataset, global index)`` of every position of ``epoch`` that a batch uses, each ``int64 (N,)``."""
        n = self.batches_per_epoch * self.batch_size * self.num_replicas
        base = sample_seed(self.seed, epoch, 0)
        rng = np.random.default_rng((base, _DRAW_TAG))
        which = rng.choice(len(self.sizes), size=n, p=np.asarray(self.weights, np.float64))
        index = np.empty(n, np.int64)
        for k, size in enumerate(self.sizes):
            at = np.flatnonzero(which == k)
            if not at.size:
                continue
            counts = np.arange(at.size)
            local = np.empty(at.size, np.int64)
            for cycle in range(int(counts[-1]) // size + 1):
                sel = counts // size == cycle
                order = np.random.default_rng((base, _ORDER_TAG, k, cycle)).permutation(size)
                local[sel] = order[counts[sel] % size]
            index[at] = self.offsets[k] + local
        return which.astype(np.int64), index

    def __iter__(self) -> Iterator[tuple[int, int]]:
        _, index = self.draws(self.epoch)
        gb = self.batch_size * self.num_replicas
        for b in range(self.position, self.batches_per_epoch):
            for j in range(self.batch_size):
                pos = b * gb + j * self.num_replicas + self.rank
                yield int(index[pos]), sample_seed(self.seed, self.epoch, pos)
