"""The GitHub workflows pass actionlint, each server's workflow builds exactly the images its
overlay deploys, and the bump script CI runs changes only that server's overlay."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.gitops.manifests import BIN, ROOT, by_kind, render, run

WORKFLOWS = ROOT / ".github" / "workflows"
BUMP = ROOT / "scripts" / "bump-image-tags.py"
SERVERS = ["Servidor1", "Servidor2", "Servidor3"]


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    # actionlint checks `run:` scripts with the shellcheck it finds on PATH: the venv's.
    return subprocess.run(
        [str(BIN / "actionlint"), *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": f"{BIN}:/usr/bin:/bin"},
    )


def test_actionlint_passes_on_every_workflow():
    result = actionlint()
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_an_unknown_context(tmp_path: Path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = actionlint(broken)
    assert result.returncode == 1 and "nope" in result.stdout


def overlay_images(server: str) -> set[str]:
    kustomizations = (ROOT / server / "k8s" / "overlays").glob("*/kustomization.yaml")
    return {
        image["name"].removeprefix("realtor-")
        for path in kustomizations
        for image in yaml.safe_load(path.read_text())["images"]
        if image["name"].startswith("realtor-")
    }


@pytest.mark.parametrize("server", SERVERS)
def test_a_server_workflow_is_filtered_to_its_paths_and_builds_its_overlay_images(server):
    workflow = yaml.safe_load((WORKFLOWS / f"{server.lower()}.yml").read_text())
    paths = workflow[True]["push"]["paths"]  # PyYAML reads GitHub's `on:` key as YAML 1.1's true
    assert f"{server}/**" in paths and "topology.yaml" in paths
    assert f"!{server}/k8s/overlays/*/kustomization.yaml" in paths  # its own bump commits
    # Another server's code may be a dependency (node 3's tests train with node 1's library), but
    # never all of it, nor its manifests: those changes deploy that server, not this one.
    others = [other for other in SERVERS if other != server]
    assert not any(path in (f"{other}/**", f"{other}/k8s/**") for path in paths for other in others)
    call = workflow["jobs"]["pipeline"]["with"]
    assert call["server"] == server
    assert {image["image"] for image in json.loads(call["images"])} == overlay_images(server)


def copy_repository(destination: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for name in listed.stdout.splitlines():
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, destination / name)


def snapshot(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): path.read_text() for path in root.rglob("*") if path.is_file()}


def test_the_bump_changes_only_its_servers_overlay(tmp_path: Path):
    copy_repository(tmp_path)
    before = snapshot(tmp_path)
    sha = "0123456789abcdef0123456789abcdef01234567"
    result = run(
        BIN / "python", BUMP, "Servidor2", sha, "--registry", "ghcr.io/owner/repo", "--root", tmp_path
    )
    assert result.returncode == 0, result.stderr
    after = snapshot(tmp_path)
    assert {name for name in after if after[name] != before.get(name)} == {
        "Servidor2/k8s/overlays/node2/kustomization.yaml"
    }
    docs = render(tmp_path / "Servidor2/k8s/overlays/node2")
    images = {
        workload["metadata"]["name"]: workload["spec"]["template"]["spec"]["containers"][0]["image"]
        for kind in ("Deployment", "Job")
        for workload in by_kind(docs, kind).values()
    }
    assert images["mlflow"] == images["artifact-bucket"] == f"ghcr.io/owner/repo/mlflow:{sha}"
    # The overlay's comments survive, and a second bump to the same sha changes nothing.
    assert after["Servidor2/k8s/overlays/node2/kustomization.yaml"].startswith("# Node 2 as deployed")
    again = run(
        BIN / "python", BUMP, "Servidor2", sha, "--registry", "ghcr.io/owner/repo", "--root", tmp_path
    )
    assert "unchanged" in again.stdout and snapshot(tmp_path) == after


def test_the_bump_refuses_an_overlay_it_could_not_rewrite_safely(tmp_path: Path):
    overlay = tmp_path / "Servidor9" / "k8s" / "overlays" / "node9"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        "images:\n- name: realtor-x\n  newTag: a\nresources: [x.yaml]\n"
    )
    result = run(BIN / "python", BUMP, "Servidor9", "b", "--root", tmp_path)
    assert result.returncode != 0 and "`images:` must be the last key" in result.stderr
