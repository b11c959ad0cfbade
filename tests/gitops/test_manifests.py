"""Every overlay renders with kubectl kustomize and passes the Kubernetes schema of the target
version, checkov's policies and yamllint; each check is also shown failing on a broken fixture."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from tests.gitops.manifests import BIN, ROOT, by_kind, run
from topology import Topology

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


def write_docs(path: Path, docs: list[dict]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def test_each_overlay_renders_into_its_namespace(rendered: dict[str, list[dict]]):
    for node, docs in rendered.items():
        assert {doc["metadata"].get("namespace") for doc in docs} == {"realtor"}, node
        assert by_kind(docs, "Service"), node


def test_kustomize_fails_on_a_missing_config_file(tmp_path: Path):
    (tmp_path / "kustomization.yaml").write_text(
        "configMapGenerator:\n  - name: x\n    files: [missing.yml]\n"
    )
    result = run(BIN / "kubectl", "kustomize", tmp_path)
    assert result.returncode != 0 and "missing.yml" in result.stderr


def kubernetes_validate(path: Path, topology: Topology):
    return run(BIN / "kubernetes-validate", "--strict", "--quiet", "-k", topology.kubernetes_version, path)


@pytest.mark.parametrize("node", ["node1", "node2", "node3"])
def test_rendered_objects_match_the_kubernetes_schema(node, rendered, topology, tmp_path: Path):
    result = kubernetes_validate(write_docs(tmp_path / f"{node}.yaml", rendered[node]), topology)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_validation_rejects_a_misspelt_field(rendered, topology, tmp_path: Path):
    broken = copy.deepcopy(by_kind(rendered["node2"], "Deployment")["mlflow"])
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {"periodSeconds": 5}
    result = kubernetes_validate(write_docs(tmp_path / "broken.yaml", [broken]), topology)
    assert result.returncode == 1 and "readinessprobe" in result.stdout


def checkov(directory: Path) -> dict:
    assert CHECKOV.exists(), "checkov lives in its own venv: run `make setup`"
    result = run(
        CHECKOV, "--framework", "kubernetes", "--skip-download", "--quiet", "-o", "json", "-d", directory
    )
    report = json.loads(result.stdout)
    return report if isinstance(report, dict) else report[0]


def test_checkov_finds_no_failures_in_any_overlay(rendered, tmp_path: Path):
    for node, docs in rendered.items():
        write_docs(tmp_path / f"{node}.yaml", docs)
    report = checkov(tmp_path)
    failed = [f"{check['check_id']} {check['resource']}" for check in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 1000


def test_checkov_fails_a_privileged_container_without_limits(rendered, tmp_path: Path):
    broken = copy.deepcopy(by_kind(rendered["node3"], "Deployment")["streamlit"])
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["privileged"] = True
    del container["resources"]["limits"]
    write_docs(tmp_path / "broken.yaml", [broken])
    failed = {check["check_id"] for check in checkov(tmp_path)["results"]["failed_checks"]}
    assert {"CKV_K8S_16", "CKV_K8S_11", "CKV_K8S_13"} <= failed


def test_yamllint_passes_on_every_yaml_file():
    result = run(BIN / "yamllint", "--strict", ".")
    assert result.returncode == 0, result.stdout


def test_yamllint_rejects_a_duplicated_key(tmp_path: Path):
    (tmp_path / "broken.yaml").write_text("name: a\nname: b\n")
    result = run(BIN / "yamllint", "--strict", "-c", ROOT / ".yamllint.yaml", tmp_path / "broken.yaml")
    assert result.returncode == 1 and "duplication of key" in result.stdout
