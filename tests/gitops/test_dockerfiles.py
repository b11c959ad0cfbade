"""Every image's Dockerfile is hadolint clean, ends as a non-root user and says how it is checked."""

import re
import subprocess
from pathlib import Path

import pytest

from tests.gitops.manifests import BIN, ROOT, run

DOCKERFILES = subprocess.run(
    ["git", "ls-files", "-co", "--exclude-standard", "*Dockerfile"], cwd=ROOT, capture_output=True, text=True
).stdout.split()


def final_user_problem(text: str) -> str | None:
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    if not users or users[-1] in ("root", "0"):
        return "the image does not end as a non-root USER"
    if "HEALTHCHECK" not in text and "probe" not in text:
        return "no HEALTHCHECK and no note on how the cluster probes it"
    return None


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_is_hadolint_clean_and_runs_as_non_root(dockerfile):
    result = run(BIN / "hadolint", dockerfile)
    assert result.returncode == 0, result.stdout
    assert final_user_problem((ROOT / dockerfile).read_text()) is None


def test_hadolint_and_the_user_check_reject_a_careless_dockerfile(tmp_path: Path):
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python:latest\nRUN apt-get install -y gcc\nUSER root\nCMD python app.py\n")
    result = run(BIN / "hadolint", broken)
    assert result.returncode == 1
    assert {"DL3007", "DL3008", "DL3025"} <= set(re.findall(r"DL\d{4}", result.stdout))
    assert final_user_problem(broken.read_text()) == "the image does not end as a non-root USER"
