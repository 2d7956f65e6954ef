"""The HTML report in a real browser: headless Chromium loads the page from disk and the test
checks, over the DevTools protocol, that it logs no console error, throws nothing, requests
nothing but the file itself, and that every chart is laid out, holds drawn content, and paints
pixels (screenshots of each chart are not blank).

The DevTools protocol runs over Chromium's ``--remote-debugging-pipe`` (NUL-separated JSON on
file descriptors 3 and 4): no websocket library, no Node, no port. Skipped, saying why, when no
Chromium is installed (Debian: ``apt-get install chromium``); ``TNNQUANT_CHROMIUM`` names
another binary.
"""
from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

import numpy as np
import pytest
from PIL import Image

from html_case import html_case, html_report  # noqa: F401  (fixtures)

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# the flags that run headless Chromium as root in a container, with no network chatter
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--remote-debugging-pipe")
TIMEOUT = 60


def find_chromium() -> str | None:
    named = os.environ.get("TNNQUANT_CHROMIUM")
    if named:
        return shutil.which(named) or named
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="tnnquant-chromium-")
        cmd_read, self.cmd_write = os.pipe()
        self.reply_read, reply_write = os.pipe()
        # move the child's ends above 4 so that dup2 onto 3 and 4 cannot clobber them
        child_read = fcntl.fcntl(cmd_read, fcntl.F_DUPFD_CLOEXEC, 10)
        child_write = fcntl.fcntl(reply_write, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(cmd_read)
        os.close(reply_write)

        def pipe_fds() -> None:   # the browser reads commands on fd 3, writes replies on fd 4
            os.dup2(child_read, 3)
            os.dup2(child_write, 4)
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=pipe_fds, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(child_read)
        os.close(child_write)
        self.buffer = b""
        self.last_id = 0
        self.events: list[dict] = []

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.cmd_write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self.last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str) -> dict:
        while True:
            found = next((e for e in self.events if e.get("method") == event), None)
            if found:
                return found
            self.events.append(self._receive())

    def _receive(self) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.reply_read], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer within {TIMEOUT} s")
            chunk = os.read(self.reply_read, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium exited: "
                                   + self.process.stderr.read().decode(errors="replace")[-800:])
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.process.wait(10)
        except (RuntimeError, TimeoutError, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self.cmd_write)
            os.close(self.reply_read)
            self.process.stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set TNNQUANT_CHROMIUM): "
                    "the HTML report is not checked in a browser")
    browser = Chromium(binary)
    yield browser
    browser.close()


# In the page: every chart's size and drawn content, the network graph's nodes, the hover
# tooltips, and every embedded raster image decoded (a broken data URI logs nothing).
CHECKS = """
(async () => {
  const charts = [...document.querySelectorAll('svg.chart, svg.netgraph')].map(svg => {
    const box = svg.getBoundingClientRect();
    const drawn = svg.getBBox();   // the extent of everything drawn inside
    return {id: svg.closest('section') ? svg.closest('section').id : '',
            cls: svg.getAttribute('class'), width: box.width, height: box.height,
            x: box.x + window.scrollX, y: box.y + window.scrollY,
            drawnWidth: drawn.width, drawnHeight: drawn.height,
            shapes: svg.querySelectorAll('path, rect, use, image, circle').length,
            texts: [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).length};
  });
  const images = [...document.querySelectorAll('image, img')].map(
    el => el.getAttribute('xlink:href') || el.getAttribute('href') || el.getAttribute('src'));
  const decoded = await Promise.all(images.map(src => {
    const img = new Image(); img.src = src;
    return img.decode().then(() => img.naturalWidth * img.naturalHeight, () => 0);
  }));
  return {title: document.title, charts, decoded,
          sections: [...document.querySelectorAll('section')].map(s => s.id),
          nodes: document.querySelectorAll('.netgraph .node').length,
          floatNodes: document.querySelectorAll('.netgraph .node.float').length,
          hoverTitles: document.querySelectorAll('svg.chart .hover > title').length,
          pageWidth: document.documentElement.scrollWidth,
          pageHeight: document.documentElement.scrollHeight};
})()
"""


def not_blank(png: bytes) -> float:
    """Share of the pixels that are not the background."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)
    return float((np.abs(pixels - 255) > 8).mean())


def test_report_renders_in_chromium(chromium, html_report, tmp_path):
    report, details, html = html_report
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    url = page.as_uri()
    target = chromium.call("Target.createTarget", url="about:blank")["targetId"]
    session = chromium.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Runtime", "Log", "Page", "Network"):
        chromium.call(f"{domain}.enable", session)
    chromium.call("Emulation.setDeviceMetricsOverride", session, width=1280, height=900,
                  deviceScaleFactor=1, mobile=False)
    chromium.call("Page.navigate", session, url=url)
    chromium.wait_for("Page.loadEventFired")
    page_state = chromium.call("Runtime.evaluate", session, expression=CHECKS,
                               awaitPromise=True, returnByValue=True)
    assert "exceptionDetails" not in page_state, page_state
    state = page_state["result"]["value"]

    events = [e for e in chromium.events if e.get("sessionId") == session]
    errors = [e["params"] for e in events
              if e["method"] == "Runtime.exceptionThrown"
              or (e["method"] == "Runtime.consoleAPICalled"
                  and e["params"]["type"] in ("error", "assert", "warning"))
              or (e["method"] == "Log.entryAdded"
                  and e["params"]["entry"]["level"] in ("error", "warning"))]
    assert errors == []
    requests = {e["params"]["request"]["url"] for e in events
                if e["method"] == "Network.requestWillBeSent"}
    assert {u for u in requests if not u.startswith("data:")} == {url}   # self-contained

    assert state["title"] and "vs" in state["title"]
    assert state["sections"] == ["summary", "worst", "layers", "network", "clipping",
                                 "outputs", "classes", "notes"]
    charts = state["charts"]
    kinds = [c["id"] for c in charts]
    assert kinds.count("layers") == 1 and kinds.count("network") == 1
    assert kinds.count("clipping") == len(details.clipping) >= 2
    assert kinds.count("outputs") == 2   # the scatter and the per-sample chart
    for chart in charts:
        assert chart["width"] > 300 and chart["height"] > 60, chart
        assert chart["drawnWidth"] > 100 and chart["drawnHeight"] > 30, chart
        assert chart["shapes"] >= 10 and chart["texts"] >= 5, chart
    assert state["decoded"] and all(state["decoded"]), state["decoded"]   # rasterized scatter
    assert state["nodes"] == len(details.layers) + len(details.network_inputs)
    assert state["floatNodes"] == sum(not layer.int8 for layer in details.layers) >= 1
    assert state["hoverTitles"] == 2 * len(report.blobs)
    assert state["pageWidth"] <= 1280   # nothing sticks out of the page sideways

    for chart in charts:   # each chart paints pixels where it is laid out
        shot = chromium.call("Page.captureScreenshot", session, format="png",
                             captureBeyondViewport=True,
                             clip={"x": chart["x"], "y": chart["y"], "width": chart["width"],
                                   "height": chart["height"], "scale": 1})
        assert not_blank(base64.b64decode(shot["data"])) > 0.02, chart
    chromium.call("Target.closeTarget", targetId=target)
