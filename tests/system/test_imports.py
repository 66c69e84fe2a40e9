"""What an API process loads at start: not the statistics and text libraries that only the
worker's screening or an insight report needs (they are imported where they are used, and
cost an API process over 100 MB, docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("scipy", "numpy", "datasketch", "rapidfuzz", "rjieba")

PROBE = """
import json, sys
from feedback_api.app import create_app
create_app()
print(json.dumps([m for m in {heavy} if m in sys.modules]))
"""


def _loaded(code: str, database_url: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"FEEDBACK_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
        timeout=60,
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_an_api_process_starts_without_the_heavy_libraries(database_url: str) -> None:
    assert _loaded(PROBE.format(heavy=HEAVY), database_url) == []


def test_the_worker_side_loads_them_when_it_runs(database_url: str) -> None:
    """Imported where used is not broken: screening's functions load their libraries."""
    code = (
        "import json, sys\n"
        "from feedback_api.integrity import near_duplicates, solicitation\n"
        "assert len(near_duplicates.bands(near_duplicates.canonical('配送很快 fast'))) == 16\n"
        "assert solicitation.benjamini_hochberg([0.01, 0.04]) == [0.02, 0.04]\n"
        f"print(json.dumps([m for m in {HEAVY} if m in sys.modules]))\n"
    )
    assert set(_loaded(code, database_url)) == {"numpy", "scipy", "datasketch", "rjieba"}
