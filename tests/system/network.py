"""Network namespaces standing in for the three nodes and the external data API, on one bridge.

Layout, all created by the test and deleted afterwards (also after a failure or a crash of an
earlier run):
- `realtor-<pid>-br` holds the bridge; each node's veth ends there, so the root namespace owns no
  link and no address of the simulated subnet;
- `realtor-<pid>-node1..3` and `realtor-<pid>-external` each hold loopback and `realtor0`, the
  other end of their veth, with the node's address on the subnet and no default route: a
  packet for any other address has nowhere to go.
The root namespace gets a blackhole route for the whole subnet first, so even a stray client
there cannot send a packet for a node address off the machine (MACHINE-NOTES.md).

Clients in the test process reach the nodes through `NetnsClient`: worker threads that entered a
namespace with setns(2) (a network namespace is per thread), never from the root namespace.
"""

import contextlib
import ctypes
import ipaddress
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

PREFIX = "realtor-"
IFACE = "realtor0"  # a node's side of its veth
BRIDGE = "br0"
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def namespaces() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()]


def kill_namespace_processes(namespace: str) -> None:
    """SIGKILL whatever still runs in a namespace (after the owners' own SIGTERM)."""
    for pid in ip("netns", "pids", namespace, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def delete_namespace(namespace: str) -> None:
    kill_namespace_processes(namespace)
    ip("netns", "delete", namespace, check=False)  # its veths and the bridge go with it


def remove_leftovers() -> list[str]:
    """Namespaces of earlier runs whose test process is gone (a crash, a SIGKILL)."""
    removed = []
    for namespace in namespaces():
        match = re.fullmatch(rf"{PREFIX}(\d+)-\w+", namespace)
        if match and not os.path.exists(f"/proc/{match[1]}"):
            delete_namespace(namespace)
            removed.append(namespace)
    return removed


def blackhole_present(subnet: str) -> bool:
    return "blackhole" in ip("route", "show", "exact", subnet).stdout


def assert_root_cannot_reach(address: str) -> None:
    """In the root namespace a node address must hit the blackhole, never eth0's gateway."""
    route = ip("route", "get", address, check=False)
    if route.returncode == 0 and "blackhole" not in route.stdout:
        raise RuntimeError(f"root namespace routes {address} via {route.stdout.strip()!r}: refusing to go on")


@dataclass
class Network:
    """The simulated subnet: one namespace per host (name -> address) around one bridge."""

    subnet: str
    hosts: dict[str, str]  # e.g. {"node1": "10.43.101.201", ..., "external": "10.43.101.108"}
    run_id: str = field(default_factory=lambda: str(os.getpid()))
    created: list[str] = field(default_factory=list)
    added_blackhole: bool = False

    def namespace(self, host: str) -> str:
        return f"{PREFIX}{self.run_id}-{host}"

    @property
    def bridge_namespace(self) -> str:
        return self.namespace("br")

    def veth(self, host: str) -> str:
        return f"v-{host}"[:15]

    def create(self) -> None:
        network = ipaddress.ip_network(self.subnet)
        for host, address in self.hosts.items():
            if ipaddress.ip_address(address) not in network:
                raise ValueError(f"{host}={address} is outside {self.subnet}")
        remove_leftovers()
        for namespace in [self.bridge_namespace, *map(self.namespace, self.hosts)]:
            delete_namespace(namespace)  # same pid reused: start clean
        # 1. Nothing for the subnet may leave through the root namespace's default route.
        if not blackhole_present(self.subnet):
            ip("route", "add", "blackhole", self.subnet)
            self.added_blackhole = True
        for address in self.hosts.values():
            assert_root_cannot_reach(address)
        # 2. The bridge, in a namespace of its own.
        self._add_namespace(self.bridge_namespace)
        ip("-n", self.bridge_namespace, "link", "add", BRIDGE, "type", "bridge")
        ip("-n", self.bridge_namespace, "link", "set", BRIDGE, "up")
        # 3. Each host: a veth made inside the bridge namespace, one end moved into the host's.
        prefix = network.prefixlen
        for host, address in self.hosts.items():
            namespace = self.namespace(host)
            self._add_namespace(namespace)
            veth = self.veth(host)
            ip("-n", self.bridge_namespace, "link", "add", veth, "type", "veth",
               "peer", "name", IFACE, "netns", namespace)  # fmt: skip
            ip("-n", self.bridge_namespace, "link", "set", veth, "master", BRIDGE)
            ip("-n", self.bridge_namespace, "link", "set", veth, "up")
            ip("-n", namespace, "addr", "add", f"{address}/{prefix}", "dev", IFACE)
            ip("-n", namespace, "link", "set", IFACE, "up")
        # 4. Before any traffic: every host reaches every other through its own veth, nothing else.
        for host in self.hosts:
            for other, address in self.hosts.items():
                if other != host:
                    route = ip("-n", self.namespace(host), "route", "get", address).stdout
                    if f"dev {IFACE}" not in route:
                        raise RuntimeError(f"{host} routes {address} via {route.strip()!r}")
            outside = ip("-n", self.namespace(host), "route", "get", "192.0.2.1", check=False)
            if outside.returncode == 0:
                raise RuntimeError(f"{host} has a route off the subnet: {outside.stdout.strip()!r}")

    def _add_namespace(self, namespace: str) -> None:
        ip("netns", "add", namespace)
        self.created.append(namespace)
        ip("-n", namespace, "link", "set", "lo", "up")

    def set_link(self, host: str, up: bool) -> None:
        """Cut (or restore) a host's cable: its veth end on the bridge goes down."""
        ip("-n", self.bridge_namespace, "link", "set", self.veth(host), "up" if up else "down")

    def exec_prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(host)]

    def destroy(self) -> None:
        for namespace in reversed(self.created):
            delete_namespace(namespace)
        self.created.clear()
        others = [name for name in namespaces() if name.startswith(PREFIX)]
        if self.added_blackhole and not others:  # another run may still rely on it
            ip("route", "del", "blackhole", self.subnet, check=False)
            self.added_blackhole = False


_libc = ctypes.CDLL(None, use_errno=True)


def _enter(namespace: str) -> None:
    fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace} failed")
    finally:
        os.close(fd)


class NetnsClient:
    """Runs callables in worker threads that live in one namespace (a client on that node)."""

    def __init__(self, namespace: str, workers: int = 4):
        self.namespace = namespace
        self._pool = ThreadPoolExecutor(
            workers, f"netns-{namespace}", initializer=_enter, initargs=(namespace,)
        )

    def run(self, function: Callable[..., T], *args, **kwargs) -> T:
        return self._pool.submit(function, *args, **kwargs).result()

    def submit(self, function: Callable[..., T], *args, **kwargs):
        return self._pool.submit(function, *args, **kwargs)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()
