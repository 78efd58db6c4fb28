"""The task queues, one per workflow family; `registry.task_queue()` gives the name used on the server."""

from enum import StrEnum


class TaskQueue(StrEnum):
    # Organization lifecycle workflows (bootstrap) and the organization steps they run.
    BOOTSTRAP = "bootstrap"
    # Invitation workflows (email fan-out, each invitation's lifecycle, the delivery sweep).
    USERS = "users"
