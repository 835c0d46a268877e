"""Learning test: a fixed budget of semantic -> flow -> generator steps on a small SynthPeople set
(32x24, 16 identities x 6 poses, the ``tiny`` networks) must

* lower the validation L1 by at least 40 % and raise SSIM by at least 0.15 against step 0, and
* beat the trivial copy-the-source baseline on both L1 and SSIM (held-out identities).

About 100 s on 2 shared CPU cores: marked slow (``pytest -m slow``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from glocal_cli.train.trainer import train


@pytest.mark.slow
def test_fixed_budget_learns_and_beats_copying_the_source(tmp_path: Path) -> None:
    from glocal_cli.synth.dataset import prepare_synthetic

    torch.set_num_threads(1)
    data = tmp_path / "synth"
    prepare_synthetic(data, identities=16, poses_per_identity=6, size=(32, 24), seed=1, workers=1,
                      show_progress=False, test_fraction=0.25)
    sets = ["train.stages=[semantic,flow,generator]", "train.batch_size=8", "train.lr=5.0e-4",
            "train.steps_semantic=150", "train.steps_flow=150",
            "train.steps_generator=500", "train.val_every=250", "train.val_pairs=32", "train.log_every=50",
            "train.image_every=1000", "train.ckpt_every=1000", "loss.w_adv=0.1"]
    res = train(data, "tiny", sets, stage="all", runs_dir=tmp_path / "runs", name="learn", device="cpu")
    gen = {r.stage: r for r in res.stages}["generator"]
    start, end = gen.initial_metrics, gen.metrics
    assert end["val/l1"] <= 0.6 * start["val/l1"], (start, end)
    assert end["val/ssim"] >= start["val/ssim"] + 0.15, (start, end)
    assert end["val/l1"] < start["val/baseline_copy_l1"], (start, end)
    assert end["val/ssim"] > start["val/baseline_copy_ssim"], (start, end)
