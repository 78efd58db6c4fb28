"""The benchmarks' shared harness: progress lines, free ports, an SMTP sink, the processes a run starts (Temporal
dev server, Temporal worker, Celery workers) with their logs, and small waits. No product code at import time:
the scripts import Django only once their environment is set."""

import asyncio
import email
import email.policy
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def clean_up_on_signals() -> None:
    """SIGINT and SIGTERM unwind through the script's clean-up (`finally`) instead of leaving its processes."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return statistics.quantiles(ordered, n=100, method="inclusive")[q - 1] if len(ordered) > 1 else ordered[0]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def wait_ready(url: str, timeout: float = 120) -> None:
    """A server's master listens before its workers have loaded Django: wait for real answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  a local URL of our own
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never answered")


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


class SmtpSink:
    """Accepts every message (aiosmtpd, in this process), counting messages and bytes. It stands in for the mail
    relay, which runs elsewhere in production, so it parses nothing (that would cost CPU on the cores the product
    is measured on), except the first message when `link` is given: the first match of it is kept."""

    def __init__(self, port: int, *, link: re.Pattern | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.port = port
        self.count = 0
        self.bytes = 0
        self.first_link = ""
        self._link = link
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.count += 1
            self.bytes += len(envelope.content)
            first = self.count == 1
        if first and self._link is not None:
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            match = self._link.search(message.get_body(preferencelist=("plain",)).get_content())
            self.first_link = match.group(0) if match else ""
        return "250 OK"

    def mark(self) -> tuple[int, int]:
        """Messages and bytes so far, to take the difference after a phase."""
        with self._lock:
            return self.count, self.bytes

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


class Processes:
    """The subprocesses of one run, each writing its output to a log file in `tmp`, and their clean-up."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: list[tuple[str, subprocess.Popen]] = []

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        output = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115  the child holds it; ours is closed below
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        output.close()
        self.running.append((name, process))
        return process

    def pid(self, name: str) -> int:
        return next(p.pid for n, p in self.running if n == name)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.tmp / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, process: subprocess.Popen, timeout: float = 30) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.running = [(n, p) for n, p in self.running if p is not process]

    def stop_all(self) -> None:
        for _, process in reversed(self.running):
            self.stop(process)

    def dump_logs(self) -> None:
        for name, _ in self.running:
            log(f"--- {name} log tail ---\n{self.log_tail(name)}")

    def remove(self, keep: bool) -> None:
        if keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def start_temporal(processes: Processes, env: dict[str, str]) -> str:
    """A Temporal dev server (SQLite in the run's directory, WAL pragmas) on free ports; returns its address once
    it answers."""
    from temporal_bridge.testing import WAL_PRAGMAS, temporal_cli

    port = free_port()
    command = [
        temporal_cli(),
        "server",
        "start-dev",
        "--db-filename",
        str(processes.tmp / "temporal.sqlite"),
        *WAL_PRAGMAS,
        "--headless",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--http-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
        "--log-level",
        "warn",
    ]
    process = processes.spawn("temporal", command, env)
    address = f"127.0.0.1:{port}"
    _wait_for_temporal(processes, process, address)
    return address


def _wait_for_temporal(processes: Processes, process: subprocess.Popen, address: str, timeout: float = 60) -> None:
    from temporalio.client import Client

    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"temporal server exited:\n{processes.log_tail('temporal')}")
        try:
            asyncio.run(asyncio.wait_for(Client.connect(address), 5))
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def temporal_version() -> str:
    from temporal_bridge.testing import temporal_cli

    return subprocess.run([temporal_cli(), "--version"], capture_output=True, text=True, check=False).stdout.strip()


def start_temporal_worker(processes: Processes, name: str, env: dict[str, str]) -> subprocess.Popen:
    """`manage.py run_temporal_worker` as deployed, serving every registered queue; returns once it polls."""
    command = [sys.executable, "manage.py", "run_temporal_worker", "--shutdown-timeout", "10"]
    process = processes.spawn(name, command, env)
    deadline = time.monotonic() + 60
    while "Temporal worker serving" not in processes.log_tail(name, 200):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the Temporal worker did not start:\n{processes.log_tail(name)}")
        time.sleep(0.2)
    return process


def start_celery(
    processes: Processes,
    name: str,
    env: dict[str, str],
    *,
    app: str,
    pool: str,
    concurrency: int,
    queue: str,
    broker_url: str,
) -> subprocess.Popen:
    """A Celery worker for `app` consuming `queue`; returns once it answers a ping (it logs at WARNING, as a run
    should, so its "ready" line at INFO is not there to wait for)."""
    node = f"{name}@bench"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "-Q",
        queue,
        "-n",
        node,
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    process = processes.spawn(name, command, env)
    from celery import Celery

    probe = Celery("bench-probe", broker=broker_url)
    deadline = time.monotonic() + 90
    try:
        while not probe.control.ping(destination=[node], timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Celery worker {name} did not start:\n{processes.log_tail(name)}")
    finally:
        probe.close()
    return process
