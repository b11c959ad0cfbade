"""Shared fixtures: the topology and every node's rendered overlay (rendered once per session)."""

import pytest

from tests.gitops.manifests import ROOT, render
from topology import Topology, load


@pytest.fixture(scope="session")
def topology() -> Topology:
    return load()


@pytest.fixture(scope="session")
def rendered(topology: Topology) -> dict[str, list[dict]]:
    return {node.name: render(ROOT / node.overlay) for node in topology.nodes.values()}
