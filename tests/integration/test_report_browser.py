"""The monthly report opened in a real headless browser (Debian's chromium), driven over the
DevTools protocol: the page loads, every plot decodes to an image of its size, the sections are
there, and the console stays silent (no error, no warning, no exception)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.history import synthetic_month
from tests.support.services import require_binary
from tests.support.sites import ROOT

pytestmark = pytest.mark.integration

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")
PROBE = """JSON.stringify({
  title: document.title,
  h1: document.querySelector("h1").textContent,
  sections: [...document.querySelectorAll("section")].map(s => s.id),
  plots: [...document.querySelectorAll("img.plot")].map(i => ({
    complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
    shown: i.getBoundingClientRect().width})),
  height: document.body.scrollHeight})"""


class DevTools:
    """One page target of a browser, over its websocket."""

    def __init__(self, url: str):
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None, open_timeout=10)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, timeout: float = 15.0, **params) -> dict:
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == mine:
                assert "error" not in msg, msg
                return msg["result"]
            self.events.append(msg)
        raise TimeoutError(method)

    def wait_event(self, method: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events:
                if e.get("method") == method:
                    return e
            self.events.append(json.loads(self.ws.recv(timeout=max(0.1, deadline
                                                                    - time.monotonic()))))
        raise TimeoutError(method)

    def close(self) -> None:
        self.ws.close()


def _browser(binary: str, profile: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.is_file() and port_file.read_text().strip():
            return proc, int(port_file.read_text().splitlines()[0])
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        time.sleep(0.1)
    proc.kill()
    raise TimeoutError("chromium did not open its DevTools port")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_report_renders_with_its_plots_and_no_console_errors(tmp_path: Path,
                                                                 lang: str) -> None:
    binary = require_binary("chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
    cfg, _ = synthetic_month(tmp_path)
    page = tmp_path / "report.html"
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "report", "monthly", "--config",
                           str(cfg.path), "--month", "2026-06", "--lang", lang, "--out",
                           str(page)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    browser, port = _browser(binary, tmp_path / "profile")  # a fresh profile every time
    tools = None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            target = next(t for t in json.loads(r.read()) if t["type"] == "page")
        tools = DevTools(target["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            tools.call(f"{domain}.enable")
        tools.call("Page.navigate", url=page.as_uri())
        tools.wait_event("Page.loadEventFired")
        seen = json.loads(tools.call("Runtime.evaluate", expression=PROBE,
                                     returnByValue=True)["result"]["value"])
        shot = tools.call("Page.captureScreenshot", format="png")["data"]
        (tmp_path / "report.png").write_bytes(__import__("base64").b64decode(shot))
        time.sleep(0.3)  # let late console messages arrive
        tools.call("Runtime.evaluate", expression="1")
    finally:
        if tools is not None:
            tools.close()
        browser.terminate()
        browser.wait(10)
    assert seen["h1"].endswith("2026-06") and seen["title"] == seen["h1"]
    assert seen["sections"] == ["summary", "items", "episodes", "faults", "devices", "manual"]
    assert len(seen["plots"]) == 3, seen
    for plot in seen["plots"]:  # decoded at the size matplotlib drew (9 x 2.8 in at 100 dpi)
        assert plot["complete"] and (plot["width"], plot["height"]) == (900, 280), plot
        assert plot["shown"] > 0
    assert seen["height"] > 1000
    noise = [e for e in tools.events
             if e.get("method") in ("Runtime.exceptionThrown",)
             or (e.get("method") == "Runtime.consoleAPICalled"
                 and e["params"]["type"] in ("error", "warning", "assert"))
             or (e.get("method") == "Log.entryAdded"
                 and e["params"]["entry"]["level"] in ("error", "warning"))]
    assert noise == [], noise
