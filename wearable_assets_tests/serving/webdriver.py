"""A minimal W3C WebDriver client over HTTP (``requests``) for Debian's chromium + chromedriver.

Enough to open a page, run JavaScript, wait for a condition and take a screenshot; selenium
would add a dependency for the same handful of HTTP calls. ``chromedriver`` is started on a
free loopback port and stopped (with its browser) when the session ends.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]


class WebDriverError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def browser_available() -> str | None:
    """Why the browser cannot run here, or None when chromium and chromedriver are installed."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    return f"{' and '.join(missing)} not installed (run scripts/browser.sh)" if missing else None


class Browser:
    """One headless Chromium session with a fresh profile; use as a context manager."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.profile = tempfile.TemporaryDirectory(prefix="wearables-chromium-")
        self.driver = subprocess.Popen(
            ["chromedriver", f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.session: str | None = None

    def __enter__(self) -> Browser:
        try:
            self._wait_ready()
            caps = {
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": {
                            "binary": shutil.which("chromium"),
                            "args": [*CHROME_ARGS, f"--user-data-dir={self.profile.name}"],
                        },
                    }
                }
            }
            self.session = self._call("POST", "/session", caps)["sessionId"]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_ready(self, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/status", timeout=2).json()["value"]["ready"]:
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            if self.driver.poll() is not None:
                raise WebDriverError(f"chromedriver exited with {self.driver.returncode}")
            time.sleep(0.1)
        raise WebDriverError("chromedriver did not become ready")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(method, f"{self.base}{path}", json=body, timeout=60)
        payload = response.json()
        if response.status_code != 200:
            raise WebDriverError(f"{method} {path}: {payload.get('value', payload)}")
        return payload.get("value")

    def _session_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url: str) -> None:
        self._session_call("POST", "/url", {"url": url})

    def execute(self, script: str, *args: Any) -> Any:
        """Run ``script`` as a function body (``return ...``); ``arguments[i]`` are ``args``."""
        return self._session_call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, timeout_s: float = 20, interval_s: float = 0.1) -> Any:
        """Poll ``script`` until it returns something truthy; return that value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.execute(script)
            if value:
                return value
            if time.monotonic() > deadline:
                raise WebDriverError(f"timed out waiting for: {script}")
            time.sleep(interval_s)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._session_call("GET", "/screenshot")))
        return path

    def close(self) -> None:
        if self.session:
            with contextlib.suppress(requests.RequestException, WebDriverError):
                self._call("DELETE", f"/session/{self.session}")
            self.session = None
        if self.driver.poll() is None:
            self.driver.terminate()
            try:
                self.driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()
        self.profile.cleanup()
