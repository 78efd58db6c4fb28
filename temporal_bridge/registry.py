"""Which workflows and activities run on which task queue.

Each app declares its own in a `temporal.py` module (found like `admin.py`), so the worker command needs no
list of its own. Queue names here are logical; `task_queue()` gives the name used on the server.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.utils.module_loading import autodiscover_modules


@dataclass(frozen=True)
class Recurring:
    """A workflow (taking no argument) that Temporal starts on a schedule: `every()` reads its interval from
    settings when the worker starts."""

    schedule_id: str
    workflow: type
    every: Callable[[], timedelta]


@dataclass
class QueueRegistration:
    workflows: list[type] = field(default_factory=list)
    activities: list[Callable] = field(default_factory=list)
    recurring: list[Recurring] = field(default_factory=list)


_queues: dict[str, QueueRegistration] = {}


def register(
    queue: str,
    *,
    workflows: Sequence[type] = (),
    activities: Sequence[Callable] = (),
    recurring: Sequence[Recurring] = (),
) -> None:
    registration = _queues.setdefault(queue, QueueRegistration())
    registration.workflows += [w for w in workflows if w not in registration.workflows]
    registration.activities += [a for a in activities if a not in registration.activities]
    registration.recurring += [r for r in recurring if r not in registration.recurring]


def discover() -> dict[str, QueueRegistration]:
    autodiscover_modules("temporal")
    for module in settings.TEMPORAL_WORKER_MODULES:
        import_module(module)
    return dict(_queues)


def task_queue(queue: str) -> str:
    """The server-side name of a logical queue (tests give each run its own prefix)."""
    return f"{settings.TEMPORAL_TASK_QUEUE_PREFIX}{queue}"
