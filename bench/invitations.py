"""Invitations benchmark: the email fan-out end to end, and the acceptance landing page under load.

Run from the repository root:

    .venv/bin/python bench/invitations.py [--invitations 1000] [--seconds 8] [--celery-concurrency N]

It creates the PostgreSQL database `a4c_bench_invitations` (127.0.0.1:5432, user postgres, trust auth),
dropping a leftover first, migrates it, starts a Temporal dev server (WAL pragmas), a Temporal worker
(`manage.py run_temporal_worker`), a Celery worker (`celery -A a4c worker --pool prefork`, one process per
core, as the README deploys it) on Redis database 13 (emptied first), an aiosmtpd SMTP sink in this process,
and gunicorn; measures; stops everything, drops the database and prints ONE JSON line on stdout (progress on
stderr).

- `fanout_emails_per_s`: a workflow runs the invitation activities as the bootstrap does (the test
  workflow `tests/invitations/fanout_workflow.py`): `invitations.generate` for N invitees (which also starts
  their N lifecycle workflows), then `invitations.enqueue_emails`, then waits until every invitation's
  DeliveryReport signal has arrived. The figure is N / (last report − invitations generated), in workflow
  time: enqueueing, N Celery tasks each issuing a token, rendering, sending over SMTP and recording the
  delivery and its events, and N signals. `fanout_total_s` also counts generating the invitations and
  starting their lifecycle workflows. `fanout_cpu_ms_per_invitation`: CPU per invitation over that whole
  span, by process (the Temporal server, the Temporal worker, Celery with its pool, the database's
  PostgreSQL backends, this script with the SMTP sink) and for the whole machine.
- `smtplib_emails_per_s` (baseline): a plain loop in this process sending N messages of the same size with
  `smtplib` to the same sink over ONE connection (`smtplib_connections`), as the product's email task keeps
  one connection per worker process.
- `landing_rps` / `landing_p99_ms`: GET /invitations/accept/ (the landing page) by 32 concurrent keep-alive
  clients for `--seconds`, three runs alternating with the baseline's, each side's best kept, on gunicorn
  (gthread, 2×cores+1 workers × 4 threads, as a4c/gunicorn.conf.py, without its access log). The clients
  send what a browser holds after opening a real emailed link: the signed invitation cookie set by the token
  URL and the CSRF cookie set by the landing page (no session). `bare_rps` / `bare_p99_ms` (baseline): a view
  returning "ok" through the same middleware on the same server, same cookies. Targets: fanout >= 100
  emails/s and >= 0.5× smtplib; landing >= 0.7× bare, p99 < 50 ms.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import re
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cpu import CpuMeter, pid_of  # noqa: E402  after the path is set
from bench.databases import SERVER_URL, database_drop, database_recreate  # noqa: E402
from tests.support.net import free_port  # noqa: E402

DB_NAME = "a4c_bench_invitations"
REDIS_DB = 13
CLIENTS = 32
LINK = re.compile(r"https?://[^\s\"<>]+/invitations/accept/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+/")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Sink:
    def __init__(self) -> None:
        self.count = 0
        self.first_link = ""

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        if not self.first_link:  # one real invitation link, for the landing page phase
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            match = LINK.search(message.get_body(preferencelist=("plain",)).get_content())
            self.first_link = match.group(0) if match else ""
        return "250 OK"


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def wait_ready(url: str, timeout: float = 120) -> None:
    """The master listens before its workers have loaded Django: wait for real answers."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never answered")


async def _load(port: int, path: str, cookie: str, seconds: float, warmup: float = 2.0):
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nConnection: keep-alive\r\n\r\n").encode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def client():
        reader = writer = None
        while time.monotonic() < stop_at:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            began = time.monotonic()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length = next(int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length")
            await reader.readexactly(length)
            done = time.monotonic()
            if began >= measure_from:
                latencies.append(done - began)
                statuses[status] = statuses.get(status, 0) + 1
            if any(h.lower() == "connection: close" for h in lines):
                writer.close()
                reader = writer = None

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    latencies.sort()
    return {
        "rps": round(len(latencies) / seconds, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invitations", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--celery-pool", default="prefork")
    parser.add_argument("--celery-concurrency", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    # The servers and workers started below inherit fd 1 and print banners there; keep stdout for the JSON line.
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    from aiosmtpd.controller import Controller

    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()

    from temporal_bridge.testing import dev_server

    prefix = f"bench{uuid.uuid4().hex[:8]}-"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "a4c.settings",
        "DATABASE_URL": f"{SERVER_URL}/{DB_NAME}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-not-a-secret",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "INVITATION_BASE_URL": "https://onboarding.bench.invalid",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "TEMPORAL_TASK_QUEUE_PREFIX": prefix,
        "TEMPORAL_WORKER_MODULES": "bench.invitations_fanout",
        "LOG_LEVEL": "WARNING",
    }
    import redis

    redis.Redis(db=REDIS_DB).flushdb()  # the benchmark's own database: leftovers of an interrupted run
    database_recreate(DB_NAME)
    processes: list[subprocess.Popen] = []
    temporal_cm = dev_server("var/bench-invitations-temporal.sqlite")
    try:
        Path("var").mkdir(exist_ok=True)
        Path("var/bench-invitations-temporal.sqlite").unlink(missing_ok=True)
        address = temporal_cm.__enter__()
        env["TEMPORAL_ADDRESS"] = address
        os.environ.update({k: v for k, v in env.items() if k not in os.environ or k != "PATH"})
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        log("migrated; starting workers")
        processes.append(
            subprocess.Popen(
                [py, "manage.py", "run_temporal_worker", "--task-queue", "bootstrap", "--task-queue", "users"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        )
        processes.append(
            subprocess.Popen(
                [
                    py,
                    "-m",
                    "celery",
                    "-A",
                    "a4c",
                    "worker",
                    "--pool",
                    args.celery_pool,
                    "--concurrency",
                    str(args.celery_concurrency),
                    "--loglevel",
                    "WARNING",
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        import django

        django.setup()
        temporal_pid = pid_of(f"--port {address.rpartition(':')[2]} ")
        pids = {"worker": processes[0].pid, "celery": processes[1].pid, "bench": os.getpid()}
        pids |= {"temporal": temporal_pid} if temporal_pid else {}
        fanout = measure_fanout(args.invitations, CpuMeter(pids, DB_NAME))
        baseline = measure_smtplib(smtp_port, args.invitations)
        web = measure_web(env, args.seconds, sink.first_link)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
        try:
            temporal_cm.__exit__(None, None, None)
        except Exception as exc:  # noqa: BLE001
            log(f"temporal shutdown: {exc}")
        controller.stop()
        from django.db import connections

        connections.close_all()
        database_drop(DB_NAME)

    result = {
        "benchmark": "invitations",
        "invitations": args.invitations,
        "fanout_emails_per_s": fanout["emails_per_s"],
        "fanout_total_s": fanout["total_s"],
        "fanout_counted": fanout["counted"],
        "fanout_cpu_ms_per_invitation": fanout["cpu_ms_per_invitation"],
        "smtplib_emails_per_s": baseline,
        "smtplib_connections": "one for the loop",
        "fanout_vs_smtplib": round(fanout["emails_per_s"] / baseline, 2),
        "landing_rps": web["landing"]["rps"],
        "landing_p50_ms": web["landing"]["p50_ms"],
        "landing_p99_ms": web["landing"]["p99_ms"],
        "bare_rps": web["bare"]["rps"],
        "bare_p99_ms": web["bare"]["p99_ms"],
        "landing_vs_bare": round(web["landing"]["rps"] / web["bare"]["rps"], 2),
        "concurrency": CLIENTS,
        "celery": f"{args.celery_pool} x{args.celery_concurrency}",
        "targets": {"fanout_emails_per_s": 100, "fanout_vs_smtplib": 0.5, "landing_vs_bare": 0.7, "landing_p99_ms": 50},
    }
    print(json.dumps(result), file=result_out, flush=True)


def measure_fanout(n: int, meter: CpuMeter) -> dict:
    from invitations.payloads import Invitee
    from temporal_bridge.client import start_workflow_rollback_unsafe, temporal
    from tests.invitations.fanout_workflow import FANOUT_WORKFLOW, FanOutInput, FanOutResult
    from tests.support.organizations import organization_make

    org_id = organization_make("Bench Health")
    workflow_id = f"bench-fanout-{org_id}"
    log(f"fan-out of {n} invitations")
    meter.start()
    began = time.monotonic()
    start_workflow_rollback_unsafe(
        FANOUT_WORKFLOW,
        FanOutInput(org_id, [Invitee(email=f"person{i:05d}@example.org") for i in range(n)], results_timeout=900),
        id=workflow_id,
        queue="bootstrap",
    )

    async def wait(client):
        return await client.get_workflow_handle(workflow_id, result_type=FanOutResult).result()

    result = temporal.run(wait, timeout=1200)
    total = time.monotonic() - began
    cpu = meter.stop()
    span = (datetime.fromisoformat(result.finished_at) - datetime.fromisoformat(result.generated_at)).total_seconds()
    counted = len(result.sent)
    from django.db.models import Max, Min

    from invitations.models import InvitationDelivery

    spans = InvitationDelivery.objects.aggregate(
        queued=Min("queued_at"), first=Min("sent_at"), last=Max("sent_at"), reported=Max("reported_at")
    )
    log("deliveries: " + ", ".join(f"{k} {v:%H:%M:%S.%f}" for k, v in spans.items()))
    missing = len(result.missing)
    log(f"fan-out: {counted} sent, {len(result.failed)} failed, {missing} missing; {span:.1f}s, {total:.1f}s in all")
    per_invitation = {name: round(seconds * 1000 / n, 1) for name, seconds in cpu.items()}
    return {
        "emails_per_s": round(n / span, 1),
        "total_s": round(total, 1),
        "counted": counted,
        "cpu_ms_per_invitation": per_invitation,
    }


def measure_smtplib(port: int, n: int) -> float:
    """One connection for the whole loop, as the product's email task keeps one per worker process."""
    body = ("x" * 70 + "\r\n") * 40  # about the size of a rendered invitation (text and HTML parts)
    message = f"From: no-reply@localhost\r\nTo: someone@example.org\r\nSubject: Invitation\r\n\r\n{body}"
    began = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for i in range(n):
            client.sendmail("no-reply@localhost", [f"person{i:05d}@example.org"], message)
    rate = n / (time.monotonic() - began)
    log(f"smtplib loop: {rate:.1f} emails/s")
    return round(rate, 1)


def _browser_cookies(port: int, link: str) -> str:
    """Open an emailed link as a browser does: the token URL (which sets the invitation cookie and redirects),
    then the landing page (which sets the CSRF cookie). Returns the Cookie header the browser then sends."""
    import http.client
    from urllib.parse import urlsplit

    cookies: dict[str, str] = {}

    def get(path: str) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            cookies[name] = rest.split(";", 1)[0]
        connection.close()
        return response

    moved = get(urlsplit(link).path)
    assert moved.status == 302, moved.status
    landing = get(moved.headers["Location"])
    assert landing.status == 200, landing.status
    assert "sessionid" not in cookies, "an anonymous invitee needs no session"
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def measure_web(env: dict, seconds: float, link: str) -> dict:
    port = free_port()
    workers = 2 * (os.cpu_count() or 1) + 1
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "a4c.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "bench.invitations_site"},
    )
    try:
        wait_port(port)
        wait_ready(f"http://127.0.0.1:{port}/bench/bare/")
        cookie = _browser_cookies(port, link)
        results = {}
        # Alternate, so background load on the machine hits both alike; keep each one's best of three runs.
        for name, path in [("bare", "/bench/bare/"), ("landing", "/invitations/accept/")] * 3:
            run = asyncio.run(_load(port, path, cookie, seconds))
            log(f"{name}: {run}")
            if name not in results or run["rps"] > results[name]["rps"]:
                results[name] = run
        assert set(results["landing"]["statuses"]) == {200}, results["landing"]["statuses"]
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
