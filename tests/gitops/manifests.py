"""Renders the overlays with the real kubectl and checks how the rendered objects fit together.

Each check returns a list of problems (empty when the wiring is right), so a test can show it
passing on the real manifests and failing on a deliberately broken copy of them.
"""

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from topology import Topology

ROOT = Path(__file__).resolve().parents[2]
# The venv running the tests holds kubectl and the linters; /usr/bin/kubectl may be another one.
BIN = Path(sys.executable).parent
POD_KINDS = {"Deployment", "StatefulSet", "Job"}
SECRET = "<secret>"
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://(?:[^@/\s\"']+@)?([A-Za-z0-9.-]+):(\d+)")


def run(*args, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=300)


def render(directory: Path) -> list[dict]:
    result = run(BIN / "kubectl", "kustomize", directory)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_specs(docs: list[dict]) -> Iterator[tuple[dict, dict]]:
    for doc in docs:
        if doc["kind"] in POD_KINDS:
            yield doc, doc["spec"]["template"]["spec"]


def containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod["containers"]


def container_env(container: dict, configmaps: dict[str, dict]) -> dict[str, str]:
    """The container's environment as Kubernetes builds it; Secret values stand as SECRET."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps.get(source["configMapRef"]["name"], {}).get("data", {}))
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("configMapKeyRef")
        if "value" in var:
            value = var["value"]
        elif ref:
            value = configmaps.get(ref["name"], {}).get("data", {}).get(ref["key"], "")
        else:
            value = SECRET
        # Kubernetes expands $(VAR) from the variables defined before this one.
        env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda match: env.get(match[1], match[0]), value)
    return env


def endpoints(env: dict[str, str]) -> list[tuple[str, str, int]]:
    """(variable, host, port) of each address: URLs, JSON connections, X_HOST/X_PORT pairs."""
    found = []
    for key, value in env.items():
        found += [(key, host, int(port)) for host, port in URL.findall(value)]
        try:
            connection = json.loads(value)
        except ValueError:
            connection = None
        if isinstance(connection, dict) and {"host", "port"} <= connection.keys():
            found.append((key, connection["host"], int(connection["port"])))
        if key.endswith("_HOST") and f"{key[:-5]}_PORT" in env:
            found.append((key, value, int(env[f"{key[:-5]}_PORT"])))
    return found


def container_endpoints(docs: list[dict]) -> Iterator[tuple[str, str, str, int]]:
    """(where, variable, host, port) for every address in env, args and ConfigMap files."""
    configmaps = by_kind(docs, "ConfigMap")
    for workload, pod in pod_specs(docs):
        for container in containers(pod):
            where = f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
            env = container_env(container, configmaps)
            env["args"] = " ".join(container.get("command", []) + container.get("args", []))
            for key, host, port in endpoints(env):
                yield where, key, host, port
    for name, configmap in configmaps.items():
        for key, text in configmap.get("data", {}).items():
            for host, port in URL.findall(text):
                yield f"ConfigMap/{name}", key, host, int(port)


def target_problem(docs: list[dict], service: dict, port: dict) -> str | None:
    """A Service port must lead to a port of a container its selector picks."""
    for workload, pod in pod_specs(docs):
        if service["spec"]["selector"].items() <= workload["spec"]["template"]["metadata"]["labels"].items():
            for container in containers(pod):
                for exposed in container.get("ports", []):
                    if port["targetPort"] in (exposed["containerPort"], exposed.get("name")):
                        return None
    name, target = service["metadata"]["name"], port["targetPort"]
    return f"Service {name} sends port {port['port']} to {target}, which no selected container exposes"


def node_port_problem(docs: list[dict], node_port: int) -> str | None:
    for name, service in by_kind(docs, "Service").items():
        for port in service["spec"]["ports"]:
            if port.get("nodePort") == node_port:
                if service["spec"].get("type") != "NodePort":
                    return f"Service {name} has nodePort {node_port} but type {service['spec'].get('type')}"
                return target_problem(docs, service, port)
    return f"no NodePort Service there has nodePort {node_port}"


def service_problem(docs: list[dict], host: str, port: int) -> str | None:
    service = by_kind(docs, "Service").get(host)
    if service is None:
        return f"{host} is neither a topology address nor a Service of this node"
    for service_port in service["spec"]["ports"]:
        if service_port["port"] == port:
            return target_problem(docs, service, service_port)
    return f"Service {host} has no port {port}"


def check_addresses(rendered: dict[str, list[dict]], topology: Topology) -> list[str]:
    """Every address a node uses resolves: another node's IP to a NodePort Service of that
    node's overlay with that nodePort, a name to a Service of its own overlay with that port."""
    node_of_ip = {node.ip: node.name for node in topology.nodes.values()}
    external = set(topology.external.values())
    problems = []
    for node, docs in rendered.items():
        for where, key, host, port in container_endpoints(docs):
            if host in node_of_ip:
                problem = node_port_problem(rendered[node_of_ip[host]], port)
            elif (host, port) in external:
                problem = None
            else:
                problem = service_problem(docs, host, port)
            if problem:
                problems.append(f"{node} {where} {key} -> {host}:{port}: {problem}")
    return problems


def documented_secret_keys(root: Path = ROOT) -> dict[str, set[str]]:
    """Secret name -> keys listed in its committed ServidorN/k8s/base/secrets/<name>.env.example."""
    return {
        example.name.removesuffix(".env.example"): {
            line.split("=", 1)[0]
            for line in example.read_text().splitlines()
            if line and not line.startswith("#")
        }
        for example in root.glob("Servidor*/k8s/base/secrets/*.env.example")
    }


def check_references(docs: list[dict], secret_keys: dict[str, set[str]]) -> list[str]:
    """Every ConfigMap key a pod reads is defined; every Secret key is documented."""
    configmaps = by_kind(docs, "ConfigMap")
    problems = []

    def configmap(name: str, key: str | None, where: str) -> None:
        if name not in configmaps:
            problems.append(f"{where}: ConfigMap {name} is not defined")
        elif key is not None and key not in configmaps[name].get("data", {}):
            problems.append(f"{where}: ConfigMap {name} has no key {key}")

    def secret(name: str, key: str | None, where: str) -> None:
        if name not in secret_keys:
            problems.append(f"{where}: Secret {name} has no {name}.env.example")
        elif key is not None and key not in secret_keys[name]:
            problems.append(f"{where}: key {key} of Secret {name} is not in {name}.env.example")

    for workload, pod in pod_specs(docs):
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        for container in containers(pod):
            for var in container.get("env", []):
                source = var.get("valueFrom", {})
                if "configMapKeyRef" in source:
                    configmap(source["configMapKeyRef"]["name"], source["configMapKeyRef"]["key"], where)
                if "secretKeyRef" in source:
                    secret(source["secretKeyRef"]["name"], source["secretKeyRef"]["key"], where)
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    configmap(source["configMapRef"]["name"], None, where)
                if "secretRef" in source:
                    secret(source["secretRef"]["name"], None, where)
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                for item in volume["configMap"].get("items", [{"key": None}]):
                    configmap(volume["configMap"]["name"], item["key"], where)
            if "secret" in volume:
                for item in volume["secret"].get("items", [{"key": None}]):
                    secret(volume["secret"]["secretName"], item["key"], where)
    return problems


def check_images(docs: list[dict]) -> list[str]:
    """Every image names a tag other than latest (or a digest), and ours were set by the overlay."""
    problems = []
    for workload, pod in pod_specs(docs):
        for container in containers(pod):
            image = container["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if "@sha256:" not in image and tag in ("", "latest"):
                problems.append(
                    f"{workload['metadata']['name']}/{container['name']}: image {image} is not pinned"
                )
            if image.startswith("realtor-"):
                problems.append(
                    f"{workload['metadata']['name']}: image {image} was not set by the overlay's images:"
                )
    return problems


def check_database_policies(docs: list[dict]) -> list[str]:
    """Databases: ingress denied by default, and every policy that opens them names its peers."""
    policies = by_kind(docs, "NetworkPolicy").values()
    problems = []
    if not any(
        policy["spec"]["podSelector"] == {} and not policy["spec"].get("ingress") for policy in policies
    ):
        problems.append("no default-deny ingress NetworkPolicy")
    for workload, _ in pod_specs(docs):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        if (
            labels.get("app.kubernetes.io/component") not in ("database", "object-store")
            or workload["kind"] == "Job"
        ):
            continue
        for policy in policies:
            selector = policy["spec"]["podSelector"].get("matchLabels", {})
            if selector and selector.items() <= labels.items():
                for rule in policy["spec"].get("ingress", []):
                    if not rule.get("from"):
                        name = policy["metadata"]["name"]
                        problems.append(
                            f"NetworkPolicy {name} opens {workload['metadata']['name']} to every peer"
                        )
    return problems


def check_probes(docs: list[dict]) -> list[str]:
    """Long-running containers have all three probes (checkov does not look at startupProbe)."""
    return [
        f"{workload['metadata']['name']}/{container['name']}: no {probe}"
        for workload, pod in pod_specs(docs)
        if workload["kind"] != "Job"
        for container in pod["containers"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
        if probe not in container
    ]
