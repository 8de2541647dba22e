"""A headless Chromium driven over the DevTools protocol (aiohttp websocket), for report tests.

Loads a page, records console errors, exceptions and every network request, and evaluates
JavaScript in it. Run as ``python -m tests.report.browser PAGE.html SHOT.png`` for a screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECK_JS = """(() => {
  const imgs = Array.from(document.images);
  return {images: imgs.length,
          broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
          tables: document.querySelectorAll('table').length,
          sections: Array.from(document.querySelectorAll('section h2')).map(h => h.textContent),
          scripts: document.scripts.length,
          links: document.querySelectorAll('link').length};
})()"""


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


#: the first screen the report must fill with its answer
VIEWPORT = (1280, 800)


@dataclass
class PageLoad:
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)
    facts: Any = None
    """what ``load_page(..., evaluate=JS)`` returned"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _drive(ws_url: str, url: str, screenshot: Path | None, evaluate: str | None,
                 media: str) -> PageLoad:
    import aiohttp

    result = PageLoad()
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, max_msg_size=0) as ws:
            ids = iter(range(1, 10_000))
            pending: dict[int, asyncio.Future] = {}
            loaded = asyncio.get_running_loop().create_future()

            async def reader() -> None:
                async for msg in ws:
                    data = json.loads(msg.data)
                    if "id" in data and data["id"] in pending:
                        pending.pop(data["id"]).set_result(data)
                        continue
                    method, params = data.get("method"), data.get("params", {})
                    if method == "Network.requestWillBeSent":
                        result.requests.append(params["request"]["url"])
                    elif method == "Runtime.exceptionThrown":
                        result.console_errors.append(json.dumps(params["exceptionDetails"])[:300])
                    elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                        result.console_errors.append(json.dumps(params.get("args"))[:300])
                    elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                        result.console_errors.append(params["entry"].get("text", "")[:300])
                    elif method == "Page.loadEventFired" and not loaded.done():
                        loaded.set_result(True)

            async def call(method: str, **params: Any) -> dict:
                i = next(ids)
                fut = asyncio.get_running_loop().create_future()
                pending[i] = fut
                await ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
                reply = await asyncio.wait_for(fut, 30)
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

            task = asyncio.create_task(reader())
            for domain in ("Page", "Runtime", "Log", "Network"):
                await call(f"{domain}.enable")
            await call("Emulation.setDeviceMetricsOverride", width=VIEWPORT[0], height=VIEWPORT[1],
                       deviceScaleFactor=1, mobile=False)
            if media != "screen":
                await call("Emulation.setEmulatedMedia", media=media)
            await call("Page.navigate", url=url)
            await asyncio.wait_for(loaded, 30)
            await asyncio.sleep(0.5)   # late console messages and requests
            reply = await call("Runtime.evaluate", expression=CHECK_JS, returnByValue=True)
            result.check = reply["result"]["value"]
            if evaluate is not None:
                reply = await call("Runtime.evaluate", expression=evaluate, returnByValue=True)
                if "exceptionDetails" in reply:
                    raise RuntimeError(f"page script failed: {reply['exceptionDetails']}")
                result.facts = reply["result"].get("value")
            if screenshot is not None:
                shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
            task.cancel()
    return result


def load_page(page: Path, screenshot: Path | None = None, evaluate: str | None = None,
              media: str = "screen") -> PageLoad:
    """Open ``page`` (file://) in a fresh headless Chromium at 1280 x 800; what happened while it
    loaded, and what the JavaScript expression ``evaluate`` returned there. ``media="print"``
    lays the page out as it prints."""
    exe = chromium_path()
    if exe is None:
        raise RuntimeError("chromium is not installed (apt-get install -y chromium; `make browser`)")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="hpcseg-chromium-") as profile:
        proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-default-apps", "--disable-extensions",
             f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            ws_url = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and ws_url is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                        pages = [t for t in json.load(r) if t.get("type") == "page"]
                    ws_url = pages[0]["webSocketDebuggerUrl"] if pages else None
                except OSError:
                    time.sleep(0.2)
            if ws_url is None:
                raise RuntimeError(f"chromium did not open its DevTools port {port} in 30 s")
            return asyncio.run(_drive(ws_url, Path(page).resolve().as_uri(), screenshot, evaluate,
                                      media))
        finally:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """End Chromium and every process it started. Why the whole group: its renderer, utility and
    crash-handler processes can outlive the main one for a moment and still write into the
    profile, so removing the profile then failed ("Directory not empty: 'Default'", seen once in
    CI)."""
    def signal_group(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    signal_group(signal.SIGTERM)
    try:
        proc.wait(10)
    finally:
        # The profile is thrown away, so the helpers need no orderly exit (they took ~2 s), and
        # a killed process writes nothing more. (Polling for the group to vanish would wait for
        # this container's init to reap the zombies.)
        signal_group(signal.SIGKILL)
        proc.wait()


if __name__ == "__main__":
    res = load_page(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    print(json.dumps({"console_errors": res.console_errors, "requests": res.requests,
                      "check": res.check}, indent=2))
