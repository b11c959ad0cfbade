"""The Argo CD objects validate against Argo CD's own CRD schemas and point at the topology's
clusters and overlays."""

import copy
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.gitops.manifests import ROOT
from topology import Topology

# CI runs from a clean clone with the project's shared folder beside it.
CRDS = Path(os.environ.get("ARGOCD_CRDS", ROOT.parent / "shared" / "crds" / "argocd"))
ARGOCD_FILES = sorted(path for path in (ROOT / "argocd").rglob("*.yaml") if path.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict]:
    assert CRDS.is_dir(), f"Argo CD CRDs not found at {CRDS} (set ARGOCD_CRDS)"
    crds = [yaml.safe_load(path.read_text()) for path in CRDS.glob("*-crd.yaml")]
    return {
        crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] for crd in crds
    }


def errors(doc: dict, schemas: dict[str, dict]) -> list[str]:
    validator = jsonschema.Draft7Validator(schemas[doc["kind"]])
    return [f"{'.'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(doc)]


def argocd_objects() -> dict[str, dict]:
    return {
        doc["metadata"]["name"] + "/" + doc["kind"]: doc
        for path in ARGOCD_FILES
        for doc in [yaml.safe_load(path.read_text())]
    }


def test_every_argocd_object_matches_its_crd(schemas):
    objects = argocd_objects()
    assert {doc["kind"] for doc in objects.values()} == {"AppProject", "Application", "ApplicationSet"}
    for name, doc in objects.items():
        assert errors(doc, schemas) == [], name


def test_the_crd_schema_rejects_a_broken_application(schemas):
    broken = copy.deepcopy(argocd_objects()["servidor1/Application"])
    broken["spec"]["syncPolicy"]["automated"]["prune"] = "yes"
    del broken["spec"]["project"]
    problems = errors(broken, schemas)
    assert "spec.syncPolicy.automated.prune: 'yes' is not of type 'boolean'" in problems
    assert ": 'project' is a required property" in " ".join(problems)


def test_one_application_per_node_syncs_its_overlay_on_its_cluster(topology: Topology):
    objects = argocd_objects()
    project = objects["realtor-mlops/AppProject"]
    generated = objects["realtor-mlops/ApplicationSet"]["spec"]["generators"][0]["list"]["elements"]
    for node in topology.nodes.values():
        application = objects[f"{node.cluster}/Application"]["spec"]
        assert application["destination"]["name"] == node.cluster
        assert application["source"]["path"] == node.overlay.as_posix()
        assert (ROOT / application["source"]["path"] / "kustomization.yaml").exists()
        assert application["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
        assert {"CreateNamespace=true", "ServerSideApply=true"} <= set(
            application["syncPolicy"]["syncOptions"]
        )
        assert application["syncPolicy"]["retry"]["backoff"]["factor"] > 1
        assert {"name": node.cluster, "namespace": "realtor"} in project["spec"]["destinations"]
        assert {"cluster": node.cluster, "path": node.overlay.as_posix()} in generated
