"""Starting, health-checking and stopping the real service processes the tests use.

A service that cannot start fails the test with its name, the reason and the end of its log,
never a silent skip.
"""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", REPO_ROOT / ".venv")) / "bin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service_failed(name: str, reason: str, log_path: Path | None = None) -> None:
    tail = ""
    if log_path and log_path.exists():
        tail = "\n--- last lines of its log ---\n" + "\n".join(
            log_path.read_text(errors="replace").splitlines()[-30:]
        )
    pytest.fail(f"service {name} could not start: {reason}{tail}", pytrace=False)


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return requests.get(url, timeout=2).ok
        except requests.RequestException:
            return False

    return check


class ServiceProcess:
    """One server process in its own process group, with its output in a log file."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.command = command
        self.log_path = log_path
        self.env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self, ready: Callable[[], bool], timeout: float = 60) -> "ServiceProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                service_failed(self.name, f"exited with code {self.process.returncode}", self.log_path)
            if ready():
                return self
            time.sleep(0.25)
        self.stop()
        service_failed(self.name, f"not ready after {timeout:.0f} s", self.log_path)
        return self

    def stop(self) -> None:
        """SIGTERM to the whole group (servers fork workers), SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
