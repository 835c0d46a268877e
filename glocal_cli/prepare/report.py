"""The validation report of a ``prepare-data`` run: every problem with its path, as Markdown and JSON.

Problems are grouped by :data:`PROBLEMS` category. Nothing here raises: preparation records a
problem, skips the file and carries on; the command fails only when nothing usable came out.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glocal_cli.data import atomic_write_text

__all__ = ["PROBLEMS", "REPORT_JSON", "REPORT_MD", "Problem", "ValidationReport"]

REPORT_MD = "validation-report.md"
REPORT_JSON = "validation-report.json"

PROBLEMS: dict[str, str] = {
    "corrupt_image": "unreadable, corrupt or truncated image (skipped)",
    "no_person": "no person found: no keypoints detected, or an all-missing annotation row (skipped)",
    "no_keypoints": "no annotation row for this image in the keypoint files (skipped)",
    "duplicate_name": "two source files give the same dataset name (the later one is skipped)",
    "unexpected_layout": "a file or folder that does not follow the expected layout (ignored)",
    "missing_split_file": "an expected split, pair or annotation file is missing (a fallback was used)",
    "unknown_csv_row": "an annotation row names an image that is not in the raw data (ignored)",
    "missing_image": "a split list or pair file names an image that is not in the raw data",
    "not_in_split": "an image found in the raw data but in no split list (skipped)",
    "parsing_missing": "no parsing map for this image although --parsing was given (skipped)",
    "parsing_invalid": "unreadable parsing map or labels outside the table (skipped)",
    "pair_dropped": "a given pair refers to an image that was skipped or is missing (dropped)",
    "fit_flagged": "the 3D body fit of this image is poor or impossible (its pairs get no correspondence file)",
    "pair_flagged": "a pair with a flagged 3D body fit: no correspondence file (training uses the self-supervised "
                    "signal for it)",
    "note": "information about choices made for this run",
}
"""Problem categories and what each means (the report's legend)."""

_MD_LIMIT = 25
_JSON_LIMIT = 5000


@dataclass(frozen=True)
class Problem:
    """One reported problem: its category, the path (or name) it concerns and a one-line message."""

    kind: str
    path: str
    message: str


@dataclass
class ValidationReport:
    """Problems collected while preparing one dataset; written as ``validation-report.{md,json}``."""

    title: str = "glocal prepare-data"
    problems: list[Problem] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def add(self, kind: str, path: str | os.PathLike[str], message: str) -> None:
        """Record one problem (``kind`` must be a key of :data:`PROBLEMS`)."""
        if kind not in PROBLEMS:
            raise ValueError(f"unknown problem kind {kind!r}")
        self.problems.append(Problem(kind, str(path), message))

    def counts(self) -> dict[str, int]:
        """``{kind: number of problems}`` (notes included), in :data:`PROBLEMS` order."""
        c = Counter(p.kind for p in self.problems)
        return {k: c[k] for k in PROBLEMS if c[k]}

    def paths(self, kind: str) -> list[str]:
        """Every path reported under ``kind``."""
        return [p.path for p in self.problems if p.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: summary, counts and up to 5000 problems per category."""
        by_kind: dict[str, list[dict[str, str]]] = {}
        for p in self.problems:
            items = by_kind.setdefault(p.kind, [])
            if len(items) < _JSON_LIMIT:
                items.append({"path": p.path, "message": p.message})
        return {"title": self.title, "summary": self.summary, "counts": self.counts(), "problems": by_kind}

    def to_markdown(self) -> str:
        """The human report: summary, a table of counts, then up to 25 paths per category."""
        lines = [f"# {self.title}: validation report", ""]
        if self.summary:
            lines += ["| item | value |", "| --- | --- |"]
            lines += [f"| {k} | {v} |" for k, v in self.summary.items()]
            lines.append("")
        counts = self.counts()
        if not counts:
            lines += ["No problems found.", ""]
            return "\n".join(lines)
        lines += ["| problem | count | meaning |", "| --- | ---: | --- |"]
        lines += [f"| {k} | {n} | {PROBLEMS[k]} |" for k, n in counts.items()]
        lines.append("")
        for kind in counts:
            items = [p for p in self.problems if p.kind == kind]
            lines += [f"## {kind} ({len(items)})", ""]
            for p in items[:_MD_LIMIT]:
                lines.append(f"- `{p.path}`: {p.message}")
            if len(items) > _MD_LIMIT:
                lines.append(f"- ... and {len(items) - _MD_LIMIT} more (see {REPORT_JSON})")
            lines.append("")
        return "\n".join(lines)

    def write(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``validation-report.md`` and ``validation-report.json`` into ``directory`` (atomically)."""
        root = Path(directory)
        md, js = root / REPORT_MD, root / REPORT_JSON
        atomic_write_text(md, self.to_markdown())
        atomic_write_text(js, json.dumps(self.to_dict(), indent=1) + "\n")
        return md, js
