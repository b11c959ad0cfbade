"""The three-node cluster fixture. `make test` runs the main flow; the fault tests (marker
`system_faults`) run only when REALTOR_SYSTEM_FULL=1 (`make test-system`), else they are
deselected (not skipped: they are not part of that run)."""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import topology
from tests.system.cluster import Cluster

# Small synthetic batches that advance on every call and never run out during the test.
DATA_API_ENV = {"MIN_UPDATE_TIME": "0", "DATA_API_BATCHES": "50", "DATA_API_BATCH_ROWS": "1500"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("REALTOR_SYSTEM_FULL") == "1":
        return
    faults = [item for item in items if item.get_closest_marker("system_faults")]
    if faults:
        config.hook.pytest_deselected(items=faults)
        items[:] = [item for item in items if item not in faults]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Not pytest's tmp_path: node 2's PostgreSQL runs as postgres and needs to reach its folder.
    folder = Path(f"/tmp/realtor-system-{os.getpid()}")
    cluster = Cluster(topology.load(), folder, DATA_API_ENV)
    try:
        cluster.start()
        yield cluster
    finally:
        started = time.monotonic()
        cluster.stop()
        print(f"system timings: {cluster.timings} teardown_s={time.monotonic() - started:.1f} logs={folder}")
