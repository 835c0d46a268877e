"""torchrun-native distributed plumbing: process group, device, DDP wrapping, reductions.

``glocal train`` is launched either as one plain process or by ``torchrun`` (one or many nodes;
torchrun's rendezvous sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``).
There is no launcher of our own. The backend is chosen per device: ``nccl`` on CUDA, ``gloo`` on
CPU. Rank 0 alone logs and saves; every helper here is a no-op in a single process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from glocal_cli.errors import ConfigError

__all__ = [
    "DistInfo",
    "all_reduce_mean",
    "all_reduce_max",
    "barrier",
    "broadcast_object",
    "cleanup_distributed",
    "init_distributed",
    "no_sync",
    "resolve_device",
    "unwrap",
    "wrap_ddp",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int
    """Global rank (0 in a single process)."""
    local_rank: int
    """Rank on this node (selects the CUDA device)."""
    world_size: int
    """Number of processes in the job."""
    device: torch.device
    """This process's device."""
    backend: str
    """'nccl', 'gloo' or '' (single process)."""

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the only process that logs and saves)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group with more than one process is active."""
        return self.world_size > 1


def resolve_device(spec: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` -> ``cuda:<local_rank>``; ``cpu``, ``cuda:N`` as given."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: CUDA is not available on this machine (use --device cpu)")
        if spec == "cuda":
            return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return dev
    if spec == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"--device {spec!r}: expected cpu, cuda, cuda:N or auto")


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun job described by the environment, or describe a single process.

    Reads ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` (set by torchrun); with ``WORLD_SIZE > 1`` it
    initialises the default process group (``env://``) with ``nccl`` on CUDA and ``gloo`` on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = ""
    if world > 1:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if not dist.is_initialized():
            kwargs: dict[str, Any] = {"backend": backend, "init_method": "env://", "world_size": world, "rank": rank}
            if dev.type == "cuda":
                kwargs["device_id"] = dev
            dist.init_process_group(**kwargs)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world, device=dev, backend=backend)


def cleanup_distributed() -> None:
    """Destroy the default process group if this process created one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if _active():
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` over processes (in place on a copy; returns it)."""
    if not _active():
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Maximum of ``tensor`` over processes (a copy)."""
    if not _active():
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process (pickled; small objects only)."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def wrap_ddp(module: nn.Module, info: DistInfo, sync_bn: bool = False, find_unused: bool = True) -> nn.Module:
    """``DistributedDataParallel`` around ``module`` under torchrun; ``module`` itself otherwise.

    Modules without trainable parameters are returned unwrapped (DDP refuses them).
    """
    if not info.distributed or not any(p.requires_grad for p in module.parameters()):
        return module
    if sync_bn:
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        module, device_ids=ids, find_unused_parameters=find_unused, broadcast_buffers=False
    )


def unwrap(module: nn.Module) -> nn.Module:
    """The bare module inside DDP and/or ``torch.compile`` wrappers."""
    while True:
        if isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod  # type: ignore[assignment]
        else:
            return module


@contextmanager
def no_sync(modules: list[nn.Module], enabled: bool) -> Iterator[None]:
    """Skip DDP's gradient all-reduce for every DDP module while ``enabled`` (non-final micro-steps)."""
    with ExitStack() as stack:
        if enabled:
            for m in modules:
                if isinstance(m, nn.parallel.DistributedDataParallel):
                    stack.enter_context(m.no_sync())
        yield
