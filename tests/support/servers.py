"""The production web server (gunicorn with a4c/gunicorn.conf.py), run as deployed, for tests of what only it does."""

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .net import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    url: str
    output: str = ""  # the server's log, filled in once it has stopped


@contextmanager
def gunicorn(env: dict[str, str], timeout: float = 60) -> Iterator[Served]:
    """One gunicorn worker on a free loopback port, with `env` as its whole environment; ready once /healthz answers."""
    with gunicorns(env, timeout=timeout) as (served,):
        yield served


@contextmanager
def gunicorns(*envs: dict[str, str], timeout: float = 60) -> Iterator[list[Served]]:
    """As gunicorn(), one server per environment, all started at once; ready once every /healthz answers."""
    ports: list[int] = []
    while len(ports) < len(envs):
        if (port := free_port()) not in ports:
            ports.append(port)
    started: list[tuple[subprocess.Popen, Served]] = []
    try:
        for env, port in zip(envs, ports, strict=True):
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "a4c/gunicorn.conf.py", "a4c.wsgi"],
                cwd=ROOT,
                env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1"},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            started.append((server, Served(f"http://127.0.0.1:{port}")))
        deadline = time.monotonic() + timeout
        for server, served in started:
            while True:
                try:
                    httpx.get(f"{served.url}/healthz")
                    break
                except httpx.TransportError:
                    assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                    time.sleep(0.2)
        yield [served for _, served in started]
    finally:
        for server, _ in started:
            server.terminate()
        for server, served in started:
            served.output, _ = server.communicate(timeout=30)
