"""topology.yaml is the one source of addresses: the loader's API and the generated overlay files."""

import shutil
from pathlib import Path

import pytest

from tests.gitops.manifests import BIN, ROOT, run
from topology import Topology

RENDER = ROOT / "scripts" / "render-topology.py"


def test_loader_builds_urls_from_node_ip_and_node_port(topology: Topology):
    mlflow = topology.node_of_server("Servidor2")
    host, port = topology.address(mlflow.name, "mlflow")
    assert (host, port) == (mlflow.ip, mlflow.node_ports["mlflow"].port)
    assert topology.url(mlflow.name, "mlflow") == f"http://{host}:{port}"


def test_loader_names_what_is_missing(topology: Topology):
    with pytest.raises(KeyError, match="service='grafana' has no NodePort on node='node1'"):
        topology.node_port("node1", "grafana")
    with pytest.raises(KeyError, match=r"node='node9' is not in topology\.yaml"):
        topology.node_ip("node9")


def test_generated_overlay_files_are_up_to_date():
    result = run(BIN / "python", RENDER, "--check")
    assert result.returncode == 0, f"run `make render` and commit:\n{result.stdout}{result.stderr}"


def copy_topology_inputs(destination: Path) -> None:
    shutil.copy(ROOT / "topology.yaml", destination)
    for k8s in ROOT.glob("Servidor*/k8s"):
        shutil.copytree(k8s, destination / k8s.relative_to(ROOT))


def test_changing_an_address_makes_the_generated_files_stale(tmp_path: Path):
    copy_topology_inputs(tmp_path)
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(topology_file.read_text().replace("ip: 10.43.101.202", "ip: 10.43.101.222"))

    stale = run(BIN / "python", RENDER, "--check", "--root", tmp_path)
    assert stale.returncode == 1
    # MLflow's address is read by nodes 1 and 3 and allowed by node 2 itself.
    for node in (
        "Servidor1/k8s/overlays/node1",
        "Servidor2/k8s/overlays/node2",
        "Servidor3/k8s/overlays/node3",
    ):
        assert f"stale {node}/topology.env" in stale.stdout

    assert run(BIN / "python", RENDER, "--root", tmp_path).returncode == 0
    assert (
        "MLFLOW_TRACKING_URI=http://10.43.101.222:30500"
        in (tmp_path / "Servidor3/k8s/overlays/node3/topology.env").read_text()
    )
    assert run(BIN / "python", RENDER, "--check", "--root", tmp_path).returncode == 0


def test_a_node_port_missing_from_the_topology_is_an_error(tmp_path: Path):
    copy_topology_inputs(tmp_path)
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(topology_file.read_text().replace("      grafana: {port: 30300}\n", ""))
    result = run(BIN / "python", RENDER, "--check", "--root", tmp_path)
    assert result.returncode != 0
    assert "NodePort Services in the base" in result.stderr and "grafana" in result.stderr
