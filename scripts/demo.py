"""`make demo`: starts the listing data API locally and shows a batch from it.

Runs until Ctrl-C (or exits after the first batch with --once). Later issues grow this into the
whole local stack.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import requests

REPO_ROOT = Path(__file__).resolve().parents[1]


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"demo: the data API exited with code {process.returncode}")
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    sys.exit(f"demo: the data API did not answer on {url} within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("DATA_API_PORT", 8080)), help="data API port"
    )
    parser.add_argument("--group", type=int, default=5, help="group_number to fetch")
    parser.add_argument("--day", default="Wednesday", help="day to fetch")
    parser.add_argument("--once", action="store_true", help="exit after showing one batch")
    args = parser.parse_args()

    url = f"http://127.0.0.1:{args.port}"
    env = {"DATA_API_STATE_FILE": str(REPO_ROOT / ".local" / "demo_data_api_state.json"), **os.environ}
    started = time.monotonic()
    print(f"demo: [1/2] starting the data API on {url}", flush=True)
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "data_api.app:create_app",
            "--port",
            str(args.port),
            "--log-level",
            "warning",
        ],
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        wait_until_healthy(url, api)
        print(f"demo: [2/2] GET /data?group_number={args.group}&day={args.day}", flush=True)
        response = requests.get(
            f"{url}/data", params={"group_number": args.group, "day": args.day}, timeout=60
        )
        if response.status_code != 200:
            print(f"demo: the API answered {response.status_code}: {response.json()['detail']}")
            query = f"group_number={args.group}&day={args.day}"
            print(f"demo: start over with: curl '{url}/restart_data_generation?{query}'")
        else:
            batch = response.json()
            rows = pd.DataFrame(batch["data"])
            print(
                f"\nbatch {batch['batch_number']} of group {batch['group_number']} ({batch['day']}): "
                f"{len(rows)} listings in {rows['state'].iloc[0]}, "
                f"median price ${rows['price'].median():,.0f}\n"
            )
            print(rows.head(8).to_string(index=False))
        print(f"\ndemo: ready in {time.monotonic() - started:.1f} s — API docs at {url}/docs")
        if not args.once:
            print("demo: Ctrl-C to stop", flush=True)
            api.wait()
    except KeyboardInterrupt:
        pass
    finally:
        api.terminate()
        api.wait(timeout=15)
        print("demo: stopped")


if __name__ == "__main__":
    main()
