"""Evaluation results and the files written for them.

``--out DIR`` receives ``metrics.json``, ``report.md``, ``per_image.csv`` (SSIM, PSNR and LPIPS of
every pair), ``histogram.png`` (one histogram per per-image metric) and ``worst.png`` (the k pairs
with the lowest headline SSIM, generated next to ground truth). Existing files are never replaced
without ``overwrite``. Pictures are drawn with Pillow (no plotting dependency).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from glocal_cli.errors import OutputExistsError
from glocal_cli.metrics.protocol import HIGHER_IS_BETTER, PER_IMAGE_METRICS

REPORT_FILES = ("metrics.json", "report.md", "per_image.csv", "histogram.png", "worst.png")
"""Files ``write_reports`` creates in the output folder."""


@dataclass
class MetricResult:
    """One metric of one evaluation."""

    key: str
    """Metric key (ssim, psnr, psnr_uint8_wraparound, lpips, fid, is, ...)."""
    label: str
    """Human label (the wrap-around PSNR says so)."""
    recipe: str
    """Exact recipe in one line."""
    status: Literal["ok", "failed", "skipped"] = "ok"
    """ok; failed (needed weights or inputs missing: the command exits non-zero); skipped (optional)."""
    value: float | None = None
    """Mean over pairs (per-image metrics) or the set value (FID, IS mean over splits)."""
    spread: float | None = None
    """Standard deviation over pairs, or over the IS splits."""
    reason: str = ""
    """Why the metric failed or was skipped."""

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER.get(self.key, True)


@dataclass
class EvalResult:
    """Everything ``evaluate`` measured; ``write_reports`` turns it into files."""

    protocol: str
    """Protocol name."""
    protocol_title: str
    """Protocol title."""
    follows: str
    """Peer script(s) the protocol follows."""
    metrics: list[MetricResult]
    """Metrics in protocol order."""
    names: list[str]
    """Pair names, in the order of the per-image arrays."""
    generated_files: list[str]
    """Generated image of each pair (file, or file[box] for panels)."""
    reference_files: list[str]
    """Reference image of each pair."""
    per_image: dict[str, list[float]] = field(default_factory=dict)
    """Per-image values by metric key (ssim*, psnr*, lpips)."""
    unmatched_generated: list[str] = field(default_factory=list)
    """Generated files without a reference."""
    unmatched_reference: list[str] = field(default_factory=list)
    """Reference files without a generated image."""
    missing_expected: list[str] = field(default_factory=list)
    """Test pairs of a prepared dataset without a generated image."""
    inputs: dict[str, str] = field(default_factory=dict)
    """Where the images came from (generated, reference, panel_dir, fid_real ...)."""
    fid_real: dict[str, object] = field(default_factory=dict)
    """Real set of the FID: source, count, cache file, whether the cache was hit."""
    device: str = "cpu"
    """Device the metrics ran on."""
    elapsed_s: float = 0.0
    """Wall time of the evaluation."""
    glocal_version: str = ""
    """Package version."""
    outputs: dict[str, str] = field(default_factory=dict)
    """Files written by write_reports."""

    @property
    def failed(self) -> list[MetricResult]:
        """Metrics that failed (the CLI exits non-zero when any did)."""
        return [m for m in self.metrics if m.status == "failed"]

    def metric(self, key: str) -> MetricResult | None:
        return next((m for m in self.metrics if m.key == key), None)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (the content of metrics.json without per-image values)."""
        d = asdict(self)
        d.pop("per_image")
        d["pairs"] = len(self.names)
        d["metrics"] = {m.key: asdict(m) for m in self.metrics}
        for key in ("names", "generated_files", "reference_files"):
            d.pop(key)
        return d


def _json_safe(value):
    """Replace non-finite floats by the strings "inf", "-inf" and "nan" (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def check_outputs(out_dir: Path, overwrite: bool) -> None:
    """Raise OutputExistsError when a report file exists in ``out_dir`` and ``overwrite`` is off."""
    if overwrite:
        return
    for name in REPORT_FILES:
        if (out_dir / name).exists():
            raise OutputExistsError(f"{out_dir / name}: exists; pass --overwrite to replace the report")


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _per_image_keys(result: EvalResult) -> list[str]:
    return [k for k in PER_IMAGE_METRICS if k in result.per_image]


def write_csv(result: EvalResult, path: Path) -> None:
    keys = _per_image_keys(result)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "generated", "reference", *keys])
        for i, name in enumerate(result.names):
            row = [name, result.generated_files[i], result.reference_files[i]]
            row += [_fmt(result.per_image[k][i], 6) for k in keys]
            w.writerow(row)


def write_markdown(result: EvalResult, path: Path, list_limit: int = 50) -> None:
    lines = [
        f"# glocal eval: protocol `{result.protocol}`",
        "",
        f"{result.protocol_title}.",
        "",
        f"Follows: {result.follows}.",
        "",
        f"Pairs evaluated: {len(result.names)}; device: {result.device}; "
        f"time: {result.elapsed_s:.1f} s; glocal {result.glocal_version}.",
        "",
    ]
    for key, value in result.inputs.items():
        lines.append(f"- {key}: `{value}`")
    lines += ["", "| metric | value | std | status | recipe |", "| --- | --- | --- | --- | --- |"]
    for m in result.metrics:
        arrow = "↑" if m.higher_is_better else "↓"
        status = m.status if not m.reason else f"{m.status}: {m.reason}"
        lines.append(
            f"| {m.label} {arrow} | {_fmt(m.value)} | {_fmt(m.spread)} | {status} | {m.recipe} |"
        )
    if result.fid_real:
        lines += ["", "FID real set: " + ", ".join(f"{k}={v}" for k, v in result.fid_real.items())]
    for title, items in (
        ("Generated files without a reference", result.unmatched_generated),
        ("Reference files without a generated image", result.unmatched_reference),
        ("Test pairs without a generated image", result.missing_expected),
    ):
        if items:
            lines += ["", f"## {title} ({len(items)})", ""]
            lines += [f"- `{n}`" for n in items[:list_limit]]
            if len(items) > list_limit:
                lines.append(f"- ... {len(items) - list_limit} more (all in metrics.json)")
    if result.outputs:
        lines += ["", "## Files", ""] + [f"- {k}: `{Path(v).name}`" for k, v in result.outputs.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def draw_histograms(result: EvalResult, path: Path, bins: int = 30) -> bool:
    """One histogram per per-image metric, stacked; returns False when there is nothing to draw."""
    keys = [k for k in _per_image_keys(result) if np.isfinite(result.per_image[k]).any()]
    if not keys:
        return False
    pw, ph, margin = 520, 200, 36
    canvas = Image.new("RGB", (pw, ph * len(keys)), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font()
    labels = {m.key: m.label for m in result.metrics}
    for row, key in enumerate(keys):
        values = np.asarray(result.per_image[key], dtype=np.float64)
        values = values[np.isfinite(values)]
        top = row * ph
        lo, hi = float(values.min()), float(values.max())
        if hi <= lo:
            hi = lo + 1e-6
        counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
        x0, x1, y0, y1 = margin, pw - 12, top + 24, top + ph - 28
        draw.text((margin, top + 6), f"{labels.get(key, key)}  (n={values.size}, mean={values.mean():.4f})",
                  fill="black", font=font)
        draw.line([(x0, y1), (x1, y1)], fill="black")
        draw.line([(x0, y0), (x0, y1)], fill="black")
        peak = max(int(counts.max()), 1)
        bw = (x1 - x0) / bins
        for i, c in enumerate(counts):
            if c:
                h = (y1 - y0) * c / peak
                draw.rectangle([x0 + i * bw + 1, y1 - h, x0 + (i + 1) * bw - 1, y1], fill=(70, 110, 180))
        mean_x = x0 + (values.mean() - lo) / (hi - lo) * (x1 - x0)
        draw.line([(mean_x, y0), (mean_x, y1)], fill=(200, 40, 40))
        draw.text((x0, y1 + 4), f"{edges[0]:.4g}", fill="black", font=font)
        draw.text((x1 - 40, y1 + 4), f"{edges[-1]:.4g}", fill="black", font=font)
        draw.text((4, y0), str(peak), fill="black", font=font)
    canvas.save(path)
    return True


def worst_indices(result: EvalResult, k: int) -> tuple[list[int], str]:
    """Indices of the k worst pairs by the headline per-image metric, and that metric's key."""
    for key in ("ssim", "lpips", "psnr", "psnr_uint8_wraparound", "ssim_256", "ssim_win51"):
        if key in result.per_image:
            values = np.asarray(result.per_image[key], dtype=np.float64)
            order = np.argsort(values if HIGHER_IS_BETTER[key] else -values, kind="stable")
            return [int(i) for i in order[:k]], key
    return [], ""


def draw_worst_grid(
    result: EvalResult,
    path: Path,
    k: int,
    load_pair: Callable[[int], tuple[np.ndarray, np.ndarray]],
    columns: int = 4,
    cell_height: int = 192,
) -> bool:
    """Grid of the k worst pairs ([generated | reference] with name and value); False if nothing."""
    idx, key = worst_indices(result, k)
    if not idx:
        return False
    font = _font()
    cells = []
    for rank, i in enumerate(idx, start=1):
        gen, ref = load_pair(i)
        pair = Image.fromarray(np.concatenate([gen, ref], axis=1))
        scale = cell_height / pair.height
        pair = pair.resize((max(1, round(pair.width * scale)), cell_height), Image.BILINEAR)
        cell = Image.new("RGB", (pair.width, cell_height + 30), "white")
        cell.paste(pair, (0, 0))
        d = ImageDraw.Draw(cell)
        value = result.per_image[key][i]
        d.text((2, cell_height + 2), f"#{rank} {key}={value:.4f}", fill="black", font=font)
        d.text((2, cell_height + 15), result.names[i][: max(8, pair.width // 6)], fill=(80, 80, 80), font=font)
        cells.append(cell)
    cw = max(c.width for c in cells)
    ch = max(c.height for c in cells)
    cols = min(columns, len(cells))
    rows = math.ceil(len(cells) / cols)
    grid = Image.new("RGB", (cols * (cw + 6), rows * (ch + 6)), (235, 235, 235))
    for n, c in enumerate(cells):
        grid.paste(c, ((n % cols) * (cw + 6) + 3, (n // cols) * (ch + 6) + 3))
    grid.save(path)
    return True


def write_reports(
    result: EvalResult,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    worst_k: int = 16,
    bins: int = 30,
    load_pair: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, str]:
    """Write every report file into ``out_dir`` (created); returns {kind: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_outputs(out, overwrite)
    written: dict[str, str] = {}
    if result.per_image:
        write_csv(result, out / "per_image.csv")
        written["per_image"] = str(out / "per_image.csv")
        if draw_histograms(result, out / "histogram.png", bins=bins):
            written["histogram"] = str(out / "histogram.png")
        if load_pair is not None and worst_k > 0 and draw_worst_grid(result, out / "worst.png", worst_k, load_pair):
            written["worst"] = str(out / "worst.png")
    written["metrics"] = str(out / "metrics.json")
    written["report"] = str(out / "report.md")
    result.outputs = dict(written)
    data = result.to_dict()
    data["per_image_file"] = written.get("per_image", "")
    text = json.dumps(_json_safe(data), indent=2, allow_nan=False)
    (out / "metrics.json").write_text(text + "\n", encoding="utf-8")
    write_markdown(result, out / "report.md")
    return written


def metric_rows(result: EvalResult) -> Sequence[tuple[str, str, str, str]]:
    """(label, value, std, status) rows for a table."""
    rows = []
    for m in result.metrics:
        arrow = "↑" if m.higher_is_better else "↓"
        status = m.status if not m.reason else f"{m.status}: {m.reason}"
        rows.append((f"{m.label} {arrow}", _fmt(m.value), _fmt(m.spread), status))
    return rows
