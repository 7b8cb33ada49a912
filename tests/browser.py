"""Open a page in a real headless Chromium and report what a person would see: console errors, an evaluated
expression, a screenshot. Talks the DevTools protocol over a pipe (--remote-debugging-pipe: NUL-separated JSON
on file descriptors 3 and 4), so it needs nothing but the browser: no driver, no Python package."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    env = os.environ.get("OPKIT_CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


@dataclass
class Page:
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, failed loads, CSP
    value: Any = None  # the evaluated expression's value
    screenshot: bytes = b""  # PNG


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int, proc: subprocess.Popen) -> None:
        self.w, self.r, self.proc = write_fd, read_fd, proc
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe (exit code {self.proc.poll()})")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        for k, m in enumerate(self.events):
            if m.get("method") == method:
                return self.events.pop(k)
        while True:
            m = self._read_message(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)


def _pipe_fds() -> tuple[int, int]:
    import fcntl

    r, w = os.pipe()
    high = fcntl.fcntl(r, fcntl.F_DUPFD_CLOEXEC, 10), fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(r)
    os.close(w)
    return high


def open_page(html: Path, expression: str, *, width: int = 1280, height: int = 1200,
              settle: float = 0.3) -> Page:
    """Load `html` (a file) in headless Chromium, evaluate `expression` (its value must be JSON), screenshot."""
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found")
    to_chrome_r, to_chrome_w = _pipe_fds()
    from_chrome_r, from_chrome_w = _pipe_fds()
    profile = tempfile.mkdtemp(prefix="opkit-chromium-")
    args = [exe, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
            "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
    # the protocol wants our write end as the browser's fd 3 and our read end as its fd 4
    # (the pipes' own descriptors are >= 10, so they never collide with 3 and 4)
    cmd = ["bash", "-c", f'exec "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-',
           "bash", *args]
    proc = subprocess.Popen(cmd, pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(to_chrome_w, from_chrome_r, proc)
    page = Page()
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            pipe.call(f"{domain}.enable", session=s)
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=s)
        pipe.events.clear()
        pipe.call("Page.navigate", {"url": html.resolve().as_uri()}, session=s)
        pipe.wait_event("Page.loadEventFired")
        time.sleep(settle)  # let late console messages arrive
        res = pipe.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=s)
        if "exceptionDetails" in res:
            page.errors.append(f"the test's expression threw: {res['exceptionDetails']}")
        else:
            page.value = res["result"].get("value")
        shot = pipe.call("Page.captureScreenshot", {"format": "png"}, session=s)
        page.screenshot = base64.b64decode(shot["data"])
        pipe.call("Runtime.evaluate", {"expression": "1"}, session=s)  # flush pending events
        for m in pipe.events:
            p = m.get("params", {})
            if m.get("method") == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                page.errors.append("uncaught: " + str(d.get("exception", {}).get("description") or d.get("text")))
            elif m.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                page.errors.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                                for a in p.get("args", [])))
            elif m.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                page.errors.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}".strip())
        try:
            pipe.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError):
            pass
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        shutil.rmtree(profile, ignore_errors=True)
    return page


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) bytes of an 8-bit non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def colour_stats(png: bytes) -> tuple[int, float]:
    """How many distinct colours a screenshot has, and the fraction of pixels that are not its commonest colour."""
    width, height, rows = png_pixels(png)
    bpp = len(rows[0]) // width
    counts: dict[bytes, int] = {}
    for row in rows[::2]:  # every other row and pixel: plenty to tell a page from a blank
        for x in range(0, width * bpp, 2 * bpp):
            px = row[x:x + 3]
            counts[px] = counts.get(px, 0) + 1
    total = sum(counts.values())
    return len(counts), 1.0 - max(counts.values()) / total
