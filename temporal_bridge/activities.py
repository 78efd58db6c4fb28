"""Helpers for activities that use Django: connection hygiene, metadata and idempotency keys."""

import functools
from collections.abc import Callable
from typing import TypeVar

from django.db import close_old_connections
from temporalio import activity
from temporalio.exceptions import ApplicationError

from eventstore.events import EventMetadata

F = TypeVar("F", bound=Callable)


def django_activity(name: str) -> Callable[[F], F]:
    """Declare a synchronous activity that uses the ORM.

    It runs on the worker's thread pool, which has no request cycle to recycle connections, so stale and
    broken connections are closed before and after each run, on the very thread that uses them.
    """

    def decorator(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            close_old_connections()
            try:
                return fn(*args, **kwargs)
            finally:
                close_old_connections()

        return activity.defn(name=name)(run)  # type: ignore[return-value]

    return decorator


def fail_for_good_on(*error_types: type[BaseException]) -> Callable[[F], F]:
    """Raise these errors as non-retryable: retrying cannot fix bad input or a refusal.

    The cause is not chained into the failure Temporal stores, so nothing but the message leaves the process.
    """

    def decorator(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except error_types as exc:
                messages = getattr(exc, "messages", None)
                message = "; ".join(messages) if isinstance(messages, list) else str(exc)
                raise ApplicationError(message, type=type(exc).__name__, non_retryable=True) from None

        return run  # type: ignore[return-value]

    return decorator


def step_metadata(step: str, *, correlation_id: str = "", acting_user_id: int | None = None) -> EventMetadata:
    """Metadata for an event written by the current activity."""
    info = activity.info()
    return EventMetadata(
        correlation_id=correlation_id,
        # The command that caused the event: this activity's execution in its workflow run.
        causation_id=f"activity:{info.workflow_run_id}/{info.activity_id}",
        workflow_id=info.workflow_id or "",
        run_id=info.workflow_run_id or "",
        workflow_type=info.workflow_type or "",
        step=step,
        attempt=info.attempt,
        acting_user_id=acting_user_id,
    )


def step_key(step: str, *scope: object) -> str:
    """An idempotency key stable across activity retries and worker restarts.

    Built from the workflow id and a step name chosen by the caller, never from the activity id, which the
    SDK numbers per run. `scope` tells apart repeated steps (the bootstrap attempt, an invitation id...).
    """
    info = activity.info()
    return "/".join([info.workflow_id or "", *(str(s) for s in scope), step])
