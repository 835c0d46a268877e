"""DDP with BatchNorm (GGR's ``ggr_norm: batch``) on 2 CPU processes (gloo): what the code does, in values.

Under ``wrap_ddp`` without SyncBatchNorm each process normalises with its own batch statistics and
DDP averages the gradients. So 2 processes x batch 1 must equal, to float round-off, one process
that runs the two samples as separate batches of 1 and averages their gradients, and must differ
from one process with batch 2 (whose BatchNorm sees both samples). The running statistics are not
synchronised (``broadcast_buffers=False``): each rank keeps those of its own data, and rank 0's are
the ones a checkpoint stores. (``train.sync_bn`` is the option that makes 2 x 1 equal 1 x 2; torch's
SyncBatchNorm needs CUDA, so it is not exercised on CPU here.)
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
import torch.nn.functional as F

from glocal_cli.config import resolve_config
from glocal_cli.models.generator import GLocalModel

REPO = Path(__file__).resolve().parents[2]
LR = 0.1

_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(1)
    from glocal_cli.train.distributed import cleanup_distributed, init_distributed, unwrap, wrap_ddp
    sys.path.insert(0, sys.argv[2])
    from tests.integration.test_ddp_batchnorm import LR, build_model, loss_of
    work = sys.argv[1]
    info = init_distributed("cpu")
    data = torch.load(f"{work}/inputs.pt", weights_only=True)
    model = build_model()
    model.load_state_dict(torch.load(f"{work}/init.pt", weights_only=True))
    ddp = wrap_ddp(model.train(), info)
    assert isinstance(ddp, torch.nn.parallel.DistributedDataParallel)
    r = info.rank
    loss_of(ddp, {k: v[r:r + 1] for k, v in data.items()}).backward()
    with torch.no_grad():
        for p in unwrap(ddp).parameters():
            if p.grad is not None:
                p -= LR * p.grad
    torch.save(unwrap(ddp).state_dict(), f"{work}/rank{r}.pt")
    cleanup_distributed()
    """
)


def build_model() -> GLocalModel:
    """The tiny model with BatchNorm in GGR (the paper's Eq. 4)."""
    cfg = resolve_config("tiny")
    return GLocalModel(dataclasses.replace(cfg.model, ggr_norm="batch"), cfg.data.height, cfg.data.width)


def loss_of(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """A loss that reaches every parameter: image L1 to a target plus the parsing logits."""
    out = model(inputs["source_image"], inputs["source_pose"], inputs["target_pose"], inputs["source_parsing"])
    return (out.image - inputs["target_image"]).abs().mean() + 0.1 * out.target_parsing_logits.square().mean()


def _inputs() -> dict[str, torch.Tensor]:
    cfg = resolve_config("tiny")
    h, w = cfg.data.height, cfg.data.width
    g = torch.Generator().manual_seed(0)
    labels = F.interpolate(torch.randint(0, 8, (2, 1, h // 4, w // 4), generator=g).float(), size=(h, w))
    return {
        "source_image": torch.rand(2, 3, h, w, generator=g) * 2 - 1,
        "target_image": torch.rand(2, 3, h, w, generator=g) * 2 - 1,
        "source_pose": torch.rand(2, 18, h, w, generator=g),
        "target_pose": torch.rand(2, 18, h, w, generator=g),
        "source_parsing": F.one_hot(labels[:, 0].long(), 8).permute(0, 3, 1, 2).float(),
    }


def _step(init: dict[str, torch.Tensor], batches: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """One SGD step on the mean of the per-batch losses' gradients; the state after each batch's forward."""
    model = build_model()
    model.load_state_dict(init)
    model.train()
    states = []
    for b in batches:
        (loss_of(model, b) / len(batches)).backward()
        states.append({k: v.clone() for k, v in model.state_dict().items() if "running" in k})
        model.load_state_dict({**model.state_dict(), **{k: init[k] for k in states[-1]}})  # each from the init
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= LR * p.grad
    return [{**model.state_dict(), **s} for s in states]


def test_ddp_batchnorm_two_gloo_processes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    init = build_model().state_dict()
    data = _inputs()
    torch.save(init, tmp_path / "init.pt")
    torch.save(data, tmp_path / "inputs.pt")
    (tmp_path / "ddp_bn.py").write_text(_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(tmp_path / "ddp_bn.py"), str(tmp_path), str(REPO)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]

    per_sample = _step(init, [{k: v[i:i + 1] for k, v in data.items()} for i in range(2)])
    big_batch = _step(init, [data])[0]
    params = [n for n, _ in build_model().named_parameters()]
    running = [k for k in init if "running_mean" in k or "running_var" in k]
    assert running, "the model has no BatchNorm running statistics"

    def worst(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], keys: list[str]) -> float:
        return max(float((a[k].float() - b[k].float()).abs().max()) for k in keys)

    # parameters: identical on both ranks (averaged gradients), equal to the per-replica-statistics
    # reference to float round-off (1e-6 after an lr-0.1 step: only the order of float sums differs) ...
    assert worst(ranks[0], ranks[1], params) == 0.0
    assert worst(ranks[0], per_sample[0], params) < 1e-6
    # ... and not equal to the batch-2 step, whose BatchNorm statistics mix both samples
    assert worst(ranks[0], big_batch, params) > 1e-4
    # running statistics: each rank's are those of its own sample; the ranks disagree
    for r in range(2):
        assert worst(ranks[r], per_sample[r], running) < 1e-6
    assert worst(ranks[0], ranks[1], running) > 1e-4
