"""Headless Chromium driven through chromedriver's W3C WebDriver HTTP API (no extra package).

Used by the report tests to look at the page as a person would: what is laid out, what is
visible, what the pixels show. Needs Debian's ``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage", "--hide-scrollbars"]


def available() -> str | None:
    """Why the browser cannot run here, or None when it can."""
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install chromium chromium-driver)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """One chromedriver + headless Chromium session with a fresh profile in ``workdir``."""

    def __init__(self, workdir: Path, width: int = 1280, height: int = 900,
                 timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(workdir / "chromedriver.log", "w")  # noqa: SIM115 (closed in close())
        self.driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=self.log,
                                       stderr=subprocess.STDOUT)
        self.session = None
        try:
            self._wait_ready()
            args = [*CHROMIUM_ARGS, f"--user-data-dir={workdir / 'profile'}",
                    f"--window-size={width},{height}"]
            caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome",
                    "goog:chromeOptions": {"binary": shutil.which("chromium"), "args": args}}}}
            self.session = self._call("POST", "/session", caps)["sessionId"]
        except BaseException:
            self.close()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            try:
                if self._call("GET", "/status", timeout=2).get("ready"):
                    return
            except (OSError, urllib.error.URLError):
                pass
            if self.driver.poll() is not None:
                raise RuntimeError(f"chromedriver exited with {self.driver.returncode}")
            time.sleep(0.2)
        raise TimeoutError("chromedriver did not become ready")

    def _call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout_s) as reply:
                return json.loads(reply.read() or b"{}").get("value")
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"WebDriver {method} {path}: {exc.read()[:500]!r}") from None

    def _session(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        """Load a page and wait until it is complete."""
        self._session("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        """Run JavaScript in the page (``return ...``) and give back its value."""
        return self._session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def element_png(self, element: dict[str, str]) -> np.ndarray:
        """Screenshot of one element (scrolled into view), as an RGB array."""
        data = self._session("GET", f"/element/{element[ELEMENT]}/screenshot")
        return decode_png(base64.b64decode(data))

    def page_png(self) -> bytes:
        """The whole page (beyond the viewport) as PNG bytes, through the DevTools protocol."""
        metrics = self._session("POST", "/goog/cdp/execute",
                                {"cmd": "Page.getLayoutMetrics", "params": {}})
        size = metrics["cssContentSize"]
        shot = self._session("POST", "/goog/cdp/execute", {
            "cmd": "Page.captureScreenshot",
            "params": {"format": "png", "captureBeyondViewport": True,
                       "clip": {"x": 0, "y": 0, "width": size["width"],
                                "height": size["height"], "scale": 1}}})
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        """End the session, stop chromedriver (and with it Chromium), reap everything."""
        if self.session is not None:
            try:
                self._call("DELETE", f"/session/{self.session}", timeout=20)
            except (OSError, RuntimeError, urllib.error.URLError):
                pass
            self.session = None
        if self.driver.poll() is None:
            self.driver.terminate()
            try:
                self.driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait(timeout=10)
        self.log.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes as an (h, w, 3) float array in 0..1."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float) / 255.0


def resized(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An RGB array resampled to (h, w) (for comparing a rendered figure with its source)."""
    from PIL import Image

    pil = Image.fromarray((image * 255).astype(np.uint8))
    return np.asarray(pil.resize((shape[1], shape[0]), Image.BILINEAR), dtype=float) / 255.0
