"""Write the reference pictures of ``tests/integration/test_front_ends_agree.py`` (``tests/data/reference/``).

    .venv/bin/python scripts/make_reference_outputs.py

Run it only when a change is *meant* to change what the shipped weights produce (new weights, a better
composition), and say so in the changelog: the test holds every other change (refactors) to these pictures.
The pictures are the CLI's results for the test's requests; ``reference.json`` records the machine (torch build,
CPU kernels) whose bits they are.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO))

from test_front_ends_agree import REFERENCE, REQUESTS, front_end_results, machine_signature  # noqa: E402

from glocal_cli.data.images import save_image  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = front_end_results(Path(tmp))
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for key, picture in results["cli"].items():
        save_image(REFERENCE / f"{key}.png", picture, png_level=9)
    (REFERENCE / "reference.json").write_text(json.dumps(
        {"machine": machine_signature(), "requests": [list(r) for r in REQUESTS],
         "pictures": sorted(results["cli"])}, indent=2) + "\n")
    print(f"{len(results['cli'])} reference pictures in {REFERENCE}")


if __name__ == "__main__":
    main()
