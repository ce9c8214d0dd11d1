"""Ways to run the API for tests and the benchmark: in a thread, or as the real ``serve`` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from time import monotonic, sleep

import requests
from fastapi import FastAPI

from wearable_assets.serving.api import create_app
from wearable_assets.serving.config import ServingConfig
from wearable_assets_dev.simulators.common import SimulatorServer


@dataclass
class RunningApi:
    url: str
    config: ServingConfig
    app: FastAPI


def free_port() -> int:
    """A loopback port nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def api_in_thread(config: ServingConfig) -> Iterator[RunningApi]:
    """``create_app(config)`` on 127.0.0.1 (random port) in a background thread of this process."""
    app = create_app(config)
    try:
        with SimulatorServer(app) as server:
            yield RunningApi(url=server.url, config=config, app=app)
    finally:
        app.state.pool.close()


@contextmanager
def api_process(dsn: str) -> Iterator[tuple[str, int]]:
    """``python -m wearable_assets.serving`` (what ``make serve`` runs) for the database of the
    pipeline's ``dsn``, on a free port chosen through ``WEARABLES_API_PORT``; yields
    ``(url, port)`` once it answers. ``WEARABLES_API_DSN`` is left unset, so the process logs in
    the way a default set-up does: as ``wearables_api`` on the pipeline's server and database."""
    port = free_port()
    env = {**os.environ, "WEARABLES_TIMESCALE_DSN": dsn, "WEARABLES_API_PORT": str(port)}
    for name in ("WEARABLES_API_HOST", "WEARABLES_API_DSN", "WEARABLES_API_ROLE"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "wearable_assets.serving", "--no-migrate"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/health", timeout=2)
                break
            except requests.ConnectionError:
                if process.poll() is not None:
                    raise RuntimeError(f"serve exited: {process.stdout.read() if process.stdout else ''}") from None
                if monotonic() > deadline:
                    raise RuntimeError("serve did not answer within 30 s") from None
                sleep(0.2)
        yield url, port
    finally:
        process.terminate()
        process.wait(timeout=15)
