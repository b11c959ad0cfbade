"""How the rendered manifests fit together across the three nodes, and each check failing on a
deliberately broken copy."""

import copy

import pytest

from tests.gitops.manifests import (
    by_kind,
    check_addresses,
    check_database_policies,
    check_images,
    check_probes,
    check_references,
    container_endpoints,
    container_env,
    documented_secret_keys,
)
from topology import Topology


def test_every_cross_server_address_reaches_a_node_port_of_the_target_overlay(rendered, topology):
    assert check_addresses(rendered, topology) == []


def test_the_expected_cross_server_addresses_are_there(rendered, topology: Topology):
    """So the check above cannot pass by finding no address at all."""
    mlflow, mysql = topology.address("node2", "mlflow"), topology.address("node1", "mysql")
    used = {
        node: {(host, port) for *_, host, port in container_endpoints(docs)}
        for node, docs in rendered.items()
    }
    assert mlflow in used["node1"] and mlflow in used["node3"]
    assert mysql in used["node3"]
    assert topology.external["data-api"] in used["node1"]


def test_a_wrong_node_port_is_reported(rendered, topology):
    broken = copy.deepcopy(rendered)
    by_kind(broken["node2"], "Service")["mlflow"]["spec"]["ports"][0]["nodePort"] = 30599
    problems = check_addresses(broken, topology)
    assert any(
        "MLFLOW_TRACKING_URI" in p and "no NodePort Service there has nodePort 30500" in p for p in problems
    )


def test_a_service_leading_nowhere_is_reported(rendered, topology):
    broken = copy.deepcopy(rendered)
    by_kind(broken["node1"], "Service")["mysql"]["spec"]["ports"][0]["targetPort"] = "mysqlx"
    problems = check_addresses(broken, topology)
    assert any("INFERENCE_LOG_HOST" in p and "which no selected container exposes" in p for p in problems)


def test_an_unknown_in_cluster_host_is_reported(rendered, topology):
    broken = copy.deepcopy(rendered)
    streamlit = by_kind(broken["node3"], "Deployment")["streamlit"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    streamlit["env"][0]["value"] = "http://inference:8000"
    assert any(
        "inference is neither a topology address nor a Service" in p
        for p in check_addresses(broken, topology)
    )


def test_mlflow_allows_the_host_headers_other_nodes_send(rendered, topology):
    configmaps = by_kind(rendered["node2"], "ConfigMap")
    mlflow = by_kind(rendered["node2"], "Deployment")["mlflow"]["spec"]["template"]["spec"]["containers"][0]
    allowed = container_env(mlflow, configmaps)["MLFLOW_ALLOWED_HOSTS"].split(",")
    host, port = topology.address("node2", "mlflow")
    assert f"{host}:{port}" in allowed and "mlflow:*" in allowed


@pytest.mark.parametrize("node", ["node1", "node2", "node3"])
def test_every_configmap_and_secret_key_is_defined_or_documented(node, rendered):
    assert check_references(rendered[node], documented_secret_keys()) == []


def test_an_undocumented_secret_key_and_a_missing_configmap_key_are_reported(rendered):
    secret_keys = documented_secret_keys()
    secret_keys["mysql-credentials"].discard("INFERENCE_LOG_PASSWORD")
    broken = copy.deepcopy(rendered["node1"])
    topology_configmap = next(name for name in by_kind(broken, "ConfigMap") if name.startswith("topology-"))
    del by_kind(broken, "ConfigMap")[topology_configmap]["data"]["MLFLOW_TRACKING_URI"]
    problems = check_references(broken, secret_keys)
    assert "Job/mysql-init: key INFERENCE_LOG_PASSWORD of Secret mysql-credentials is not in" in " ".join(
        problems
    )
    assert f"ConfigMap {topology_configmap} has no key MLFLOW_TRACKING_URI" in " ".join(problems)


@pytest.mark.parametrize("node", ["node1", "node2", "node3"])
def test_every_image_is_pinned(node, rendered):
    assert check_images(rendered[node]) == []


def test_latest_and_unset_images_are_reported(rendered):
    broken = copy.deepcopy(rendered["node1"])
    by_kind(broken, "StatefulSet")["mysql"]["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "mysql:latest"
    )
    by_kind(broken, "Job")["mysql-init"]["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "realtor-airflow"
    )
    problems = check_images(broken)
    assert "mysql/mysql: image mysql:latest is not pinned" in problems
    assert "mysql-init: image realtor-airflow was not set by the overlay's images:" in problems


@pytest.mark.parametrize("node", ["node1", "node2"])
def test_databases_are_reachable_only_from_named_peers(node, rendered):
    assert check_database_policies(rendered[node]) == []


def test_a_policy_opening_a_database_to_everyone_is_reported(rendered):
    broken = copy.deepcopy(rendered["node2"])
    del by_kind(broken, "NetworkPolicy")["postgres"]["spec"]["ingress"][0]["from"]
    assert check_database_policies(broken) == ["NetworkPolicy postgres opens postgres to every peer"]


@pytest.mark.parametrize("node", ["node1", "node2", "node3"])
def test_every_long_running_container_has_startup_readiness_and_liveness_probes(node, rendered):
    assert check_probes(rendered[node]) == []


def test_a_missing_startup_probe_is_reported(rendered):
    broken = copy.deepcopy(rendered["node3"])
    del by_kind(broken, "Deployment")["grafana"]["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert check_probes(broken) == ["grafana/grafana: no startupProbe"]
