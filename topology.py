"""The three-node topology (topology.yaml): node addresses, NodePorts and external services.

Manifests, local runs and tests read addresses only through this module, so an address is
defined once. It never talks to the network: it only reads the file.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

TOPOLOGY_FILE = Path(__file__).with_name("topology.yaml")


@dataclass(frozen=True)
class NodePort:
    service: str
    port: int
    clients: tuple[str, ...]  # other nodes allowed through a NetworkPolicy; empty: not restricted


@dataclass(frozen=True)
class Node:
    name: str
    server: str
    cluster: str
    ip: str
    node_ports: dict[str, NodePort]

    @property
    def overlay(self) -> Path:
        """The node's kustomize overlay, relative to the repository root."""
        return Path(self.server, "k8s", "overlays", self.name)


@dataclass(frozen=True)
class Topology:
    kubernetes_version: str
    nodes: dict[str, Node]
    external: dict[str, tuple[str, int]]

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"node={name!r} is not in topology.yaml; nodes: {sorted(self.nodes)}") from None

    def node_of_server(self, server: str) -> Node:
        for node in self.nodes.values():
            if node.server == server:
                return node
        raise KeyError(f"server={server!r} has no node in topology.yaml")

    def node_ip(self, name: str) -> str:
        return self.node(name).ip

    def node_port(self, node: str, service: str) -> int:
        ports = self.node(node).node_ports
        if service not in ports:
            raise KeyError(f"service={service!r} has no NodePort on node={node!r}; it has {sorted(ports)}")
        return ports[service].port

    def address(self, node: str, service: str) -> tuple[str, int]:
        """(host, port) where other nodes reach a node's service."""
        return self.node_ip(node), self.node_port(node, service)

    def url(self, node: str, service: str, scheme: str = "http") -> str:
        host, port = self.address(node, service)
        return f"{scheme}://{host}:{port}"


def parse(raw: dict) -> Topology:
    nodes = {
        name: Node(
            name=name,
            server=spec["server"],
            cluster=spec["cluster"],
            ip=spec["ip"],
            node_ports={
                service: NodePort(service, port["port"], tuple(port.get("clients", ())))
                for service, port in spec["node_ports"].items()
            },
        )
        for name, spec in raw["nodes"].items()
    }
    external = {name: (spec["host"], spec["port"]) for name, spec in raw.get("external", {}).items()}
    return Topology(str(raw["kubernetes_version"]), nodes, external)


@cache
def load(path: Path = TOPOLOGY_FILE) -> Topology:
    return parse(yaml.safe_load(path.read_text()))
