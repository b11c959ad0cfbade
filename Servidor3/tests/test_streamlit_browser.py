"""Each page of a running `streamlit run`, rendered by headless Debian chromium: the expected
headings are on the page and no exception box. Screenshots are kept in the test's output folder.

Chromium is driven over its DevTools protocol rather than with `--screenshot`/`--dump-dom`: those
end when chromium's virtual time budget runs out, about two real seconds here, often before the
page's script run on the server has finished, which leaves only Streamlit's loading skeleton.
"""

import base64
import itertools
import json
import re
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests
from websockets.sync.client import connect

from tests.harness.processes import REPO_ROOT, VENV_BIN, ServiceProcess, free_port, http_ok

CHROMIUM_FLAGS = (
    "--headless=old", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,2600",
)  # fmt: skip
PAGE_SECONDS = 90  # a cold page run: MLflow calls and /explain on two busy cores
PAGES = {
    "": ["Predict a price", "Bedrooms", "Predict price"],
    "models": ["Models", "Champion", "Run history", "Test MAE by version", "SHAP summary of the champion"],
    "data": ["Data", "Ingestion log", "By generation", "Quarantine", "Reasons"],
}
# Whether the page is still running its script, and the box Streamlit draws around an exception.
PAGE_STATE = """JSON.stringify({
  text: document.body.innerText,
  running: document.querySelector('[data-testid="stStatusWidgetRunningIcon"]') !== null,
  exceptions: document.querySelectorAll('[data-testid="stException"]').length,
})"""


@pytest.fixture(scope="module")
def streamlit_url(pipeline_api, pipeline_runs, mlflow_server, tmp_path_factory):
    port = free_port()
    server = ServiceProcess(
        "streamlit",
        [
            str(VENV_BIN / "streamlit"),
            "run",
            str(REPO_ROOT / "Servidor3" / "streamlit_app" / "app.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        tmp_path_factory.mktemp("streamlit") / "streamlit.log",
        {
            "INFERENCE_API_URL": pipeline_api.url,
            "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
            "MODEL_NAME": pipeline_runs.settings.model_name,
            "PIPELINE_EXPERIMENT": pipeline_runs.settings.experiment,
        },
    )
    url = f"http://127.0.0.1:{port}"
    server.start(http_ok(f"{url}/_stcore/health"))
    yield url
    server.stop()


class DevTools:
    """One page of a headless chromium, driven over the DevTools protocol."""

    def __init__(self, websocket_url: str) -> None:
        self._socket = connect(websocket_url, max_size=None)
        self._ids = itertools.count(1)

    def call(self, method: str, **params) -> dict:
        call_id = next(self._ids)
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:  # events arrive in between; only our answer counts
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == call_id:
                assert "error" not in message, message
                return message["result"]

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def browser(tmp_path) -> Iterator[DevTools]:
    """Chromium with the flags MACHINE-NOTES names, a fresh profile, and a DevTools port."""
    port = free_port()
    process = subprocess.Popen(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not http_ok(f"http://127.0.0.1:{port}/json/version")():
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        [page] = [target for target in requests.get(f"http://127.0.0.1:{port}/json", timeout=5).json()
                  if target["type"] == "page"]  # fmt: skip
        devtools = DevTools(page["webSocketDebuggerUrl"])
        yield devtools
        devtools.close()
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.parametrize("path", list(PAGES), ids=["predict", "models", "data"])
def test_each_page_renders_its_headings_without_an_exception(streamlit_url, browser, tmp_path, path):
    url = f"{streamlit_url}/{path}"
    browser.call("Page.navigate", url=url)
    deadline = time.monotonic() + PAGE_SECONDS
    while True:
        time.sleep(0.5)
        state = json.loads(browser.call("Runtime.evaluate", expression=PAGE_STATE)["result"]["value"])
        missing = [text for text in PAGES[path] if text not in state["text"]]
        if (not missing and not state["running"]) or time.monotonic() > deadline:
            break
    time.sleep(1)  # charts and images draw after the text
    screenshot = tmp_path / f"{path or 'predict'}.png"
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert not missing, f"{missing} not on {url} after {PAGE_SECONDS} s; see {screenshot}"
    assert state["exceptions"] == 0 and not re.search(r"Traceback|Error:", state["text"]), state["text"]


CLICK_PREDICT = """[...document.querySelectorAll('button')]
  .find((button) => button.innerText.trim() === 'Predict price').click()"""


def test_a_prediction_shows_its_price_and_waterfall_in_the_browser(streamlit_url, browser, tmp_path):
    """The form's defaults submitted as a person would: the price and the SHAP waterfall appear."""
    browser.call("Page.navigate", url=streamlit_url)
    expected = ["Predicted price", "What moved the price"]
    deadline, clicked = time.monotonic() + PAGE_SECONDS, False
    while True:
        time.sleep(0.5)
        state = json.loads(browser.call("Runtime.evaluate", expression=PAGE_STATE)["result"]["value"])
        if not clicked and "Predict price" in state["text"] and not state["running"]:
            browser.call("Runtime.evaluate", expression=CLICK_PREDICT)
            clicked = True
            continue
        missing = [text for text in expected if text not in state["text"]]
        if (clicked and not missing and not state["running"]) or time.monotonic() > deadline:
            break
    time.sleep(2)  # the waterfall chart draws after the text
    screenshot = tmp_path / "prediction.png"
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert clicked and not missing, f"{missing} not shown after submitting; see {screenshot}"
    assert re.search(r"\$\d{2,3},\d{3}", state["text"]), state["text"]  # a price in dollars
    assert state["exceptions"] == 0 and not re.search(r"Traceback|Error:", state["text"]), state["text"]
