"""One Temporal client per process, usable from synchronous Django code.

The SDK client is asyncio-only. Request handlers, Celery tasks and management commands are synchronous, so
the client lives on an event loop in a daemon thread of its own, connected once and reused by every caller
in the process. After a fork (Celery's prefork pool) the child builds its own.

Start workflows from request code after the current transaction commits (`start_workflow_on_commit`, or a
service's own `transaction.on_commit`), so a workflow never sees data that was rolled back. The `*_rollback_unsafe`
functions act at once; their name is the warning.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from temporalio.client import Client, TLSConfig, WorkflowExecutionDescription
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from .registry import task_queue

log = logging.getLogger(__name__)
T = TypeVar("T")


class TemporalUnavailable(RuntimeError):
    """Temporal could not be reached (or did not answer in time)."""


async def connect(runtime: Runtime | None = None) -> Client:
    tls: bool | TLSConfig = settings.TEMPORAL_TLS
    if settings.TEMPORAL_TLS_CLIENT_CERT:
        tls = TLSConfig(
            client_cert=Path(settings.TEMPORAL_TLS_CLIENT_CERT).read_bytes(),
            client_private_key=Path(settings.TEMPORAL_TLS_CLIENT_KEY).read_bytes(),
        )
    return await Client.connect(
        settings.TEMPORAL_ADDRESS,
        namespace=settings.TEMPORAL_NAMESPACE,
        api_key=settings.TEMPORAL_API_KEY or None,
        tls=tls,
        runtime=runtime,
    )


class SyncTemporal:
    """Runs client calls on a private event loop thread and waits for them."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None
        self._target: tuple[str, str] | None = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._pid != os.getpid() or self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="temporal-client", daemon=True).start()
                self._pid, self._loop, self._client = os.getpid(), loop, None
            return self._loop

    async def _get_client(self) -> Client:
        target = (settings.TEMPORAL_ADDRESS, settings.TEMPORAL_NAMESPACE)
        if self._client is None or self._target != target:
            self._client, self._target = await connect(), target
        return self._client

    def run(self, call: Callable[[Client], Awaitable[T]], *, timeout: float | None = None) -> T:
        loop = self._ensure_loop()

        async def invoke() -> T:
            return await call(await self._get_client())

        future = asyncio.run_coroutine_threadsafe(invoke(), loop)
        try:
            return future.result(timeout or settings.TEMPORAL_CLIENT_TIMEOUT)
        except TimeoutError as exc:
            future.cancel()
            raise TemporalUnavailable(f"Temporal at {settings.TEMPORAL_ADDRESS} did not answer in time") from exc
        except RPCError as exc:
            if exc.status not in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                raise
            raise TemporalUnavailable(f"Temporal at {settings.TEMPORAL_ADDRESS} is unavailable: {exc}") from exc
        except RuntimeError as exc:
            if "connect" not in str(exc).lower():
                raise
            raise TemporalUnavailable(f"Cannot reach Temporal at {settings.TEMPORAL_ADDRESS}: {exc}") from exc

    def reset(self) -> None:
        """Forget the client (tests point settings at a new server)."""
        with self._guard:
            self._client = None


temporal = SyncTemporal()


def start_workflow_rollback_unsafe(workflow: str | Callable, arg: Any, *, id: str, queue: str) -> str:
    """Start a workflow now and return its run id. Refused if a run with this id is open (or, unless it
    failed, already closed): the same organization is never bootstrapped twice at once."""

    async def start(client: Client) -> str:
        handle = await client.start_workflow(
            workflow,
            arg,
            id=id,
            task_queue=task_queue(queue),
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
        return handle.result_run_id or ""

    return temporal.run(start)


def start_workflow_on_commit(
    workflow: str | Callable, arg: Any, *, id: str, queue: str, using: str = DEFAULT_DB_ALIAS, **kwargs: Any
) -> None:
    """Start a workflow once the current transaction commits. An error starting it is raised to the caller,
    after the commit."""
    transaction.on_commit(
        lambda: start_workflow_rollback_unsafe(workflow, arg, id=id, queue=queue, **kwargs), using=using
    )


def signal_workflow_rollback_unsafe(
    workflow_id: str, signal: str, arg: Any = None, *, run_id: str | None = None
) -> None:
    async def send(client: Client) -> None:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        await (handle.signal(signal) if arg is None else handle.signal(signal, arg))

    temporal.run(send)


def query_workflow(
    workflow_id: str, query: str, *, result_type: type | None = None, timeout: float | None = None
) -> Any:
    async def ask(client: Client) -> Any:
        return await client.get_workflow_handle(workflow_id).query(query, result_type=result_type)

    return temporal.run(ask, timeout=timeout)


def describe_workflow(workflow_id: str) -> WorkflowExecutionDescription:
    async def describe(client: Client) -> WorkflowExecutionDescription:
        return await client.get_workflow_handle(workflow_id).describe()

    return temporal.run(describe)


def cancel_workflow(workflow_id: str) -> None:
    async def cancel(client: Client) -> None:
        await client.get_workflow_handle(workflow_id).cancel()

    temporal.run(cancel)


def workflow_ui_url(workflow_id: str, run_id: str = "") -> str:
    base = settings.TEMPORAL_UI_URL.rstrip("/")
    url = f"{base}/namespaces/{settings.TEMPORAL_NAMESPACE}/workflows/{workflow_id}"
    return f"{url}/{run_id}/history" if run_id else url
