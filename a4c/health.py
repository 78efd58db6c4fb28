"""Liveness and readiness for load balancers and orchestrators: `/healthz` and `/readyz`.

A middleware placed first answers them, before host validation and the HTTPS redirect: probes come over plain HTTP
with the pod's address as Host. Neither says more than ok, unavailable (or, for Temporal not yet asked, unknown): the
errors go to the log, not the probe.

Anyone who reaches the app can call them, so a probe costs next to nothing: the database and cache answers are
shared by the probes of a process for a second, and Temporal is asked by a thread of its own, never by a probe.
"""

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from temporal_bridge.client import temporal

log = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
# A flood of probes costs one database query and one cache check per second per process.
READINESS_CACHE_TTL = 1.0
# While one probe's check runs, the others give the last answer this long; past it the check counts as hung.
READINESS_CHECK_PATIENCE = 5.0
TEMPORAL_CHECK_INTERVAL = 5.0
TEMPORAL_CHECK_TIMEOUT = 2.0
# The background check stops once no probe has come for this long (the next probe starts it again).
TEMPORAL_CHECK_IDLE = 60.0


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    # A key of this check's own: concurrent probes, of this process or another, never read each other's value.
    value = secrets.token_hex(16)
    key = f"a4c:readyz:{value}"
    if not cache.add(key, value, timeout=10) or cache.get(key) != value:
        raise RuntimeError("the cache did not return what was stored")
    cache.delete(key)


def _check_temporal() -> None:
    async def ask(client) -> None:
        await client.workflow_service.get_system_info(GetSystemInfoRequest())

    temporal.run(ask, timeout=TEMPORAL_CHECK_TIMEOUT)


def _outcome(name: str, check: Callable[[], None]) -> str:
    try:
        check()
    except Exception as exc:  # any failure means unavailable; its details stay in the log
        log.warning("Readiness: %s unavailable (%s)", name, type(exc).__name__)
        return "unavailable"
    return "ok"


class RecentOutcome:
    """A check's outcome, reused by every probe of the process for READINESS_CACHE_TTL; one probe at a time checks
    again, and the others meanwhile give the last outcome (they wait only for the process's first one)."""

    def __init__(self, name: str, check: Callable[[], None]) -> None:
        self.name, self.check = name, check
        self._lock = threading.Lock()
        self._last: tuple[float, str] | None = None  # (monotonic time checked, outcome)
        self._since = 0.0  # when the check now running began

    def get(self) -> str:
        last = self._last
        if last is not None and time.monotonic() - last[0] < READINESS_CACHE_TTL:
            return last[1]
        if last is None:
            acquired = self._lock.acquire(timeout=READINESS_CHECK_PATIENCE)
        else:
            acquired = self._lock.acquire(blocking=False)
        if not acquired:
            last, since = self._last, self._since
            # No start recorded after the last outcome's: the holder has only just taken the lock.
            if last is not None and (since <= last[0] or time.monotonic() - since < READINESS_CHECK_PATIENCE):
                return last[1]
            return "unavailable"
        try:
            last = self._last
            if last is None or time.monotonic() - last[0] >= READINESS_CACHE_TTL:
                started = self._since = time.monotonic()
                last = self._last = (started, _outcome(self.name, self.check))
            return last[1]
        finally:
            self._lock.release()


class TemporalWatch:
    """Asks Temporal from a daemon thread of the process, started by a probe, every TEMPORAL_CHECK_INTERVAL; probes
    read the last outcome for the configured server, "unknown" until there is one."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._last: tuple[tuple[str, str], str] | None = None  # ((address, namespace) asked, outcome)
        self._probed = 0.0  # monotonic time of the last probe

    @staticmethod
    def _target() -> tuple[str, str]:
        return settings.TEMPORAL_ADDRESS, settings.TEMPORAL_NAMESPACE

    def _watch(self) -> None:
        while time.monotonic() - self._probed < TEMPORAL_CHECK_IDLE:
            self._wake.clear()
            target = self._target()
            self._last = (target, _outcome("temporal", _check_temporal))
            self._wake.wait(TEMPORAL_CHECK_INTERVAL)

    def _ensure_running(self) -> None:
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._guard:
            if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                # A thread that stopped (or that only the parent of a fork had) leaves nothing current behind.
                self._pid, self._last, self._wake = os.getpid(), None, threading.Event()
                self._thread = threading.Thread(target=self._watch, name="readiness-temporal", daemon=True)
                self._thread.start()

    def outcome(self) -> str:
        self._probed = time.monotonic()
        self._ensure_running()
        last = self._last
        if last is None:
            return "unknown"
        if last[0] != self._target():
            self._wake.set()  # settings now name another server: ask it now rather than at the next round
            return "unknown"
        return last[1]


_database = RecentOutcome("database", _check_database)
_cache = RecentOutcome("cache", _check_cache)
_temporal = TemporalWatch()


def readiness() -> JsonResponse:
    """Ready when the database and the cache answer. Temporal is reported but not required: without it the web side
    still serves pages and keeps bootstrap requests to start later, so taking it out of rotation would not help."""
    checks = {"database": _database.get(), "cache": _cache.get(), "temporal": _temporal.outcome()}
    ready = checks["database"] == "ok" and checks["cache"] == "ok"
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


class HealthCheckMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.method in ("GET", "HEAD"):
            if request.path == LIVENESS_PATH:
                return JsonResponse({"status": "ok"})
            if request.path == READINESS_PATH:
                return readiness()
        return self.get_response(request)
