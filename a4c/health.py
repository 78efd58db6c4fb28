"""Liveness and readiness for load balancers and orchestrators: `/healthz` and `/readyz`.

A middleware placed first answers them, before host validation and the HTTPS redirect: probes come over plain HTTP
with the pod's address as Host. Neither says more than ok or unavailable: the errors go to the log, not the probe.
"""

import logging
import secrets

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from temporal_bridge.client import temporal

log = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
TEMPORAL_CHECK_TIMEOUT = 2.0


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    # A value of this check's own: a cache that stores nothing (or another process's value) is not one that works.
    key, value = "a4c:readyz", secrets.token_hex(8)
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not return what was stored")


def _check_temporal() -> None:
    async def ask(client) -> None:
        await client.workflow_service.get_system_info(GetSystemInfoRequest())

    temporal.run(ask, timeout=TEMPORAL_CHECK_TIMEOUT)


def _outcome(name: str, check) -> str:
    try:
        check()
    except Exception as exc:  # any failure means unavailable; its details stay in the log
        log.warning("Readiness: %s unavailable (%s)", name, type(exc).__name__)
        return "unavailable"
    return "ok"


def readiness() -> JsonResponse:
    """Ready when the database and the cache answer. Temporal is reported but not required: without it the web side
    still serves pages and keeps bootstrap requests to start later, so taking it out of rotation would not help."""
    checks = {
        "database": _outcome("database", _check_database),
        "cache": _outcome("cache", _check_cache),
        "temporal": _outcome("temporal", _check_temporal),
    }
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
