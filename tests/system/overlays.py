"""What each node runs, read from its rendered overlay: environment, commands and NodePorts.

The system test starts every process with the environment `kubectl kustomize` renders for its
Deployment (topology ConfigMap included), so a wrong NodePort, URL or model name in the manifests
fails the run. Only three kinds of values are supplied here:
- Secret values (a Secret's keys are documented, its values are not in the repository);
- in-node Service names: there is no cluster DNS or kube-proxy, so `name:port` of a Service of the
  same node becomes `<node IP>:<nodePort>` when the Service has one (the process listens there),
  else `127.0.0.1:<port>` inside the node's namespace;
- paths inside the images (the DAG folder, config files), replaced by the repository's.
Addresses of other nodes and of the external data API are used exactly as rendered.
"""

import json
import re
from functools import cached_property

from tests.gitops.manifests import ROOT, by_kind, containers, pod_specs, render
from topology import Node

URL = re.compile(r"(\b[a-z][a-z0-9+.-]*://(?:[^@/\s\"']+@)?)([A-Za-z0-9.-]+):(\d+)")
LOOPBACK = "127.0.0.1"


class Overlay:
    def __init__(self, node: Node):
        self.node = node
        self.docs = render(ROOT / node.overlay)

    @cached_property
    def services(self) -> dict[str, dict]:
        return by_kind(self.docs, "Service")

    @cached_property
    def configmaps(self) -> dict[str, dict]:
        return by_kind(self.docs, "ConfigMap")

    def configmap(self, prefix: str) -> dict[str, str]:
        """A ConfigMap's data by the name before kustomize's hash suffix."""
        (name,) = [name for name in self.configmaps if name.rsplit("-", 1)[0] == prefix]
        return self.configmaps[name]["data"]

    def node_port(self, service: str) -> int:
        """The nodePort of one of this node's NodePort Services, as rendered."""
        spec = self.services[service]["spec"]
        if spec.get("type") != "NodePort":
            raise ValueError(f"{self.node.name}: Service {service} is {spec.get('type')}, not NodePort")
        (port,) = spec["ports"]
        return port["nodePort"]

    def listen_address(self, service: str) -> tuple[str, int]:
        """Where this node's process for a NodePort Service listens: the node's IP, the nodePort."""
        return self.node.ip, self.node_port(service)

    def resolve(self, host: str, port: int) -> tuple[str, int]:
        """In-node Service names to where the test runs them; any other address unchanged."""
        service = self.services.get(host)
        if service is None:
            return host, port
        for service_port in service["spec"]["ports"]:
            if service_port["port"] == port:
                if service["spec"].get("type") == "NodePort":
                    return self.node.ip, service_port["nodePort"]
                return LOOPBACK, port
        raise ValueError(f"{self.node.name}: Service {host} has no port {port}")

    def container(self, workload: str) -> dict:
        for doc, pod in pod_specs(self.docs):
            if doc["metadata"]["name"] == workload:
                return containers(pod)[-1]
        raise KeyError(f"{self.node.name}: no workload {workload}")

    def command(self, workload: str) -> list[str]:
        container = self.container(workload)
        return [*container.get("command", []), *container.get("args", [])]

    def env(self, workload: str, secrets: dict[str, str]) -> dict[str, str]:
        """The container's environment as Kubernetes builds it, with `secrets` (by key) for the
        Secret references and in-node Service addresses resolved."""
        container = self.container(workload)
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(self.configmaps[source["configMapRef"]["name"]]["data"])
        for var in container.get("env", []):
            source = var.get("valueFrom", {})
            if "value" in var:
                value = var["value"]
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                value = self.configmaps[ref["name"]]["data"][ref["key"]]
            else:
                key = source["secretKeyRef"]["key"]
                if key not in secrets:
                    raise KeyError(
                        f"{self.node.name} {workload}: the test supplies no value for Secret key {key}"
                    )
                value = secrets[key]
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda match: env.get(match[1], match[0]), value)
        return self.resolve_env(env)

    def resolve_env(self, env: dict[str, str]) -> dict[str, str]:
        resolved = {}
        for key, value in env.items():
            resolved[key] = URL.sub(lambda m: "{}{}:{}".format(m[1], *self.resolve(m[2], int(m[3]))), value)
            try:
                connection = json.loads(value)
            except ValueError:
                connection = None
            if isinstance(connection, dict) and {"host", "port"} <= connection.keys():
                connection["host"], connection["port"] = self.resolve(connection["host"], connection["port"])
                resolved[key] = json.dumps(connection)
        for key in env:
            for port_key in (f"{key[:-5]}_PORT", f"{key[:-5]}_TCP_PORT"):
                if key.endswith("_HOST") and port_key in env:
                    host, port = self.resolve(env[key], int(env[port_key]))
                    resolved[key], resolved[port_key] = host, str(port)
        return resolved

    def address(self, value: str) -> tuple[str, int]:
        """host and port of an `http://host:port` value, resolved."""
        match = URL.search(value)
        if match is None:
            raise ValueError(f"no address in {value!r}")
        return self.resolve(match[2], int(match[3]))
