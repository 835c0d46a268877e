"""Rewrite the ``## Settings (`infer.*`)`` section of ``docs/inference.md`` from ``glocal_cli/infer/config.py``
(the groups of :data:`GROUPS`, each key's default and the first sentence of its docstring).

    .venv/bin/python scripts/write_infer_settings_doc.py

``tests/unit/test_infer_config_groups.py`` fails when a key is missing from the section: run this after adding,
removing or regrouping a key.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from glocal_cli.config.docs import field_docs
from glocal_cli.infer.config import GROUPS, InferConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "inference.md"
HEADING = "## Settings (`infer.*`)"
INTRO = {
    "run": "how the job runs",
    "input": "how photos, poses and parsings come in",
    "output": "what is written",
    "transfer": "pose transfer",
    "inpaint": "inpainting",
}


def first_sentence(text: str, limit: int = 200) -> str:
    text = text.replace("e.g. ", "e.g.\u00a0").replace("i.e. ", "i.e.\u00a0")
    out = re.split(r"(?<=\.)\s+(?=[A-Z(`'])", text, maxsplit=1)[0].replace("\u00a0", " ")
    return out if len(out) < limit else out[: limit - 3].rsplit(" ", 1)[0] + " ..."


def section() -> str:
    docs = field_docs(InferConfig)
    defaults = {f.name: f.default for f in dataclasses.fields(InferConfig)}
    lines = [HEADING, "",
             "Every setting of `glocal transfer` / `glocal inpaint` / `glocal serve` and the Python API, by group",
             "(`--set infer.KEY=VALUE`, or an `infer:` block in a `--config` YAML; `InferConfig(...)` in Python; choices",
             "are checked the same way everywhere). The full text of each is its docstring in",
             "`glocal_cli/infer/config.py`; this table is written by `scripts/write_infer_settings_doc.py`.", "",
             "**Weights recommend settings.** A weights folder's `config.json` may record the `infer.*` settings it "
             "was",
             "measured best with (`\"infer\": {...}`; a relative `source_parser` is a folder beside it). They "
             "replace the",
             "defaults below and yield to everything the user gives: defaults < the weights' settings < `--config` < "
             "`--set`",
             "< options. `weights/inpaint` recommends `source_parser: ../parser-256`, `parsing_ensemble`, "
             "`parsing_flip` and",
             "`parsing_refine` (docs/results.md, \"Real-photo parsing\"); in Python, "
             "`GLocalPipeline.from_pretrained(dir)` applies",
             "them and a `config=` given to it is used as it is (`resolve_infer_config(dir, file, sets)` layers "
             "them).", ""]
    for group, keys in GROUPS.items():
        lines += [f"**{group}**: {INTRO[group]}.", "", "| key | default | what |", "| --- | --- | --- |"]
        for key in keys:
            value = defaults[key]
            shown = ",".join(value) if isinstance(value, tuple) else ('""' if value == "" else str(value))
            lines.append(f"| `{key}` | `{shown}` | {first_sentence(docs.get(key, '')).replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    text = DOC.read_text()
    start = text.index(HEADING)
    end = text.index("\n## ", start + len(HEADING)) + 1
    DOC.write_text(text[:start] + section() + text[end:])
    print(f"{DOC}: {sum(len(k) for k in GROUPS.values())} keys in {len(GROUPS)} groups")


if __name__ == "__main__":
    main()
