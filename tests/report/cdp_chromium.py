"""Drive headless Chromium over the DevTools protocol on a pipe (``--remote-debugging-pipe``), standard library only.

Chromium reads commands from file descriptor 3 and writes replies and events to descriptor 4, each a JSON
message ending in a NUL byte. That is all a page test needs (load a file, collect console errors, run a
line of JavaScript, take a screenshot), so no Playwright or Selenium (both download or need their own
browser builds and drivers, which a machine without internet cannot fetch).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    """The Chromium executable: ``$NEUROXAI_CHROMIUM`` or the first of :data:`NAMES` on the PATH."""
    given = os.environ.get("NEUROXAI_CHROMIUM")
    if given:
        return given
    return next((p for p in (shutil.which(n) for n in NAMES) if p), None)


@dataclass
class PageResult:
    """What loading a page showed."""

    errors: list[str] = field(default_factory=list)
    value: Any = None
    screenshot: bytes = b""


class Chromium:
    """One headless Chromium process and a page in it.

    Args:
        executable: The browser.
        width, height: The window (the screenshot's size: the first screen).
        timeout: Seconds to wait for any one reply.
    """

    def __init__(self, executable: str, *, width: int = 1280, height: int = 800, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.width, self.height = width, height
        self._profile = tempfile.mkdtemp(prefix="neuroxai-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds() -> None:  # the browser's fd 3 reads our commands, fd 4 writes its replies
            import fcntl

            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4 first
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)  # dup2 makes 3 and 4 inheritable
            os.dup2(high_w, 4)

        args = [
            executable,
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",  # root in a container has no user namespaces for the sandbox
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--hide-scrollbars",
            f"--user-data-dir={self._profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,  # keep the inheritable 3 and 4 (Python's own descriptors are not inheritable)
            preexec_fn=child_fds,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    # ------------------------------------------------------------------ protocol
    def _read_message(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe (it exited)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> dict[str, Any]:
        """Send one command and wait for its reply (events that arrive meanwhile are kept in :attr:`events`)."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session is not None:
            msg["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str) -> dict[str, Any]:
        """Wait for an event (one that already arrived counts)."""
        for e in self.events:
            if e.get("method") == event:
                return e
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read_message(deadline)
            if "method" in message:
                self.events.append(message)
                if message["method"] == event:
                    return message

    # ------------------------------------------------------------------ a page
    def open(self, path: Path, expression: str) -> PageResult:
        """Load a file, wait for its load event, evaluate ``expression`` (returning JSON) and screenshot the first screen."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.send("Page.navigate", {"url": path.resolve().as_uri()})
        self.wait_for("Page.loadEventFired")
        value = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        shot = self.send("Page.captureScreenshot", {"format": "png"})
        result = PageResult(value=value.get("result", {}).get("value"), screenshot=base64.b64decode(shot["data"]))
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                result.errors.append(str(p.get("exceptionDetails", {}).get("text")))
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                result.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                entry = p["entry"]
                result.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
        return result

    def close(self) -> None:
        """Close the browser (politely, then by force)."""
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close", session=False)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
