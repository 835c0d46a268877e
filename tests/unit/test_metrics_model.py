"""The model plus prepared dataset mode: ``evaluate_model`` (inference over pairs-test.csv, then evaluation).

Tiny random weights on a tiny SynthPeople dataset: the metric values are not meaningful, only the
files, the pairing with the dataset's ground truth and the resume behaviour are checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from glocal_cli.errors import ConfigError, DataError, OutputExistsError
from glocal_cli.evaluate import evaluate_model
from glocal_cli.metrics.config import EvalConfig
from glocal_cli.metrics.evaluate import _real_set, evaluate, generated_name
from glocal_cli.metrics.matching import match_folders
from glocal_cli.metrics.protocol import get_protocol

skimage_metrics = pytest.importorskip("skimage.metrics")
CFG = EvalConfig(workers=0, batch_size=4, worst_k=2, device="cpu")
METRICS = ["ssim", "psnr"]
REPORTS = ("metrics.json", "report.md", "per_image.csv", "histogram.png", "worst.png")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    from glocal_cli.config import resolve_config
    from glocal_cli.models.generator import GLocalModel
    from glocal_cli.synth.dataset import prepare_synthetic

    root = tmp_path_factory.mktemp("model-eval")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        GLocalModel(resolve_config("tiny").model, 32, 24).save_pretrained(root / "weights")
    prepare_synthetic(root / "data", identities=3, poses_per_identity=3, size=(32, 24), seed=0, workers=1,
                      show_progress=False)
    return root / "weights", root / "data"


def _test_pairs(data):
    from glocal_cli.data.layout import PreparedDataset

    return PreparedDataset(data).pairs("test")


def test_generates_evaluates_against_the_dataset_and_resumes(model_and_data, tmp_path):
    weights, data = model_and_data
    pairs = _test_pairs(data)
    assert len(pairs) >= 3
    out = tmp_path / "eval"

    result, summary = evaluate_model(weights, data, out=out, pairs_limit=2, config=CFG, metrics=METRICS,
                                     progress=False)
    gen = out / "generated"
    names = [generated_name(a, b) for a, b in pairs[:2]]
    assert names[0] == f"{pairs[0][0][:-4]}_{pairs[0][1][:-4]}.png"  # <from>_<to>.png (synthetic names are .png)
    assert sorted(p.name for p in gen.iterdir()) == sorted(names)
    assert (summary.pairs, summary.generated, summary.kept, summary.failures) == (2, 2, 0, [])
    assert not (out / ".inference-partial").exists()
    for name in REPORTS:
        assert (out / name).is_file(), name
    assert result.names == sorted(names) and result.missing_expected == []
    assert result.inputs["weights"] == str(weights) and "2 of" in result.inputs["test_pairs"]
    # evaluated exactly like the two-folder mode against the dataset's images/ (ground truth = <to>)
    by_name = dict(zip(result.names, result.per_image["ssim"]))
    for (_, b), name in zip(pairs[:2], names):
        g = np.asarray(Image.open(gen / name).convert("RGB"))
        r = np.asarray(Image.open(data / "images" / b).convert("RGB"))
        assert g.shape == r.shape == (32, 24, 3)
        expected = skimage_metrics.structural_similarity(r, g, data_range=255, gaussian_weights=True, sigma=1.5,
                                                         use_sample_covariance=False, channel_axis=-1)
        assert by_name[name] == pytest.approx(expected, abs=1e-4)
    two_folder = evaluate(gen, data, config=CFG, metrics=METRICS, progress=False)
    assert two_folder.per_image["psnr"] == pytest.approx(result.per_image["psnr"])
    # the FID real set of the training-set protocols is the dataset's train.lst
    refs, info = _real_set(match_folders(gen, data), get_protocol("gfla"), None)
    assert "train.lst" in info["source"] and len(refs) == len((data / "train.lst").read_text().split())

    # the report exists: refused before any inference
    with pytest.raises(OutputExistsError):
        evaluate_model(weights, data, out=out, pairs_limit=3, config=CFG, metrics=METRICS, progress=False)
    # an interrupted run (results, no report) resumes: existing results are kept, the missing one made
    for name in REPORTS:
        (out / name).unlink()
    stamps = {n: (gen / n).stat().st_mtime_ns for n in names}
    result, summary = evaluate_model(weights, data, out=out, pairs_limit=3, config=CFG, metrics=METRICS,
                                     progress=False)
    assert (summary.generated, summary.kept) == (1, 2)
    assert {n: (gen / n).stat().st_mtime_ns for n in names} == stamps
    assert len(result.names) == 3 and (gen / generated_name(*pairs[2])).is_file()

    # --overwrite regenerates; only the selected pairs are evaluated although 3 results exist
    result, summary = evaluate_model(weights, data, out=out, pairs_limit=1, config=CFG, metrics=METRICS,
                                     overwrite=True, progress=False)
    assert (summary.generated, summary.kept) == (1, 0)
    assert result.names == [names[0]] and len(list(gen.iterdir())) == 3


def test_bad_inputs(model_and_data, tmp_path):
    weights, data = model_and_data
    with pytest.raises(ConfigError, match="pairs-limit"):
        evaluate_model(weights, data, out=tmp_path / "a", pairs_limit=0, config=CFG, progress=False)
    with pytest.raises(DataError, match="not a prepared dataset"):
        evaluate_model(weights, tmp_path, out=tmp_path / "b", config=CFG, progress=False)
