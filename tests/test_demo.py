"""`make demo`'s script, run as a user runs it."""

import subprocess
import sys

from tests.harness.processes import REPO_ROOT, free_port


def test_demo_starts_the_data_api_and_prints_a_batch(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/demo.py", "--once", "--port", str(free_port()), "--group", "3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"DATA_API_STATE_FILE": str(tmp_path / "state.json"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "batch 1 of group 3 (Wednesday): 4000 listings in" in result.stdout
    assert "prev_sold_date" in result.stdout, "the batch's rows are printed"
    assert "demo: stopped" in result.stdout
