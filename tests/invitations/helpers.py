import uuid

from invitations.payloads import Invitee
from temporal_bridge.client import start_workflow_rollback_unsafe, temporal

from .fanout_workflow import FANOUT_WORKFLOW, FanOutInput, FanOutResult


def fan_out(organization_id: str, invitees: list[Invitee], **kwargs) -> FanOutResult:
    """Generate invitations and send their emails through the real activities, Celery and SMTP; wait for
    every delivery report."""
    workflow_id = f"fanout-{uuid.uuid4()}"
    start_workflow_rollback_unsafe(
        FANOUT_WORKFLOW, FanOutInput(organization_id, invitees, **kwargs), id=workflow_id, queue="bootstrap"
    )
    return workflow_result(workflow_id, FanOutResult, timeout=kwargs.get("results_timeout", 120) + 60)


def workflow_result(workflow_id: str, result_type=None, timeout: float = 60):
    async def wait(client):
        return await client.get_workflow_handle(workflow_id, result_type=result_type).result()

    return temporal.run(wait, timeout=timeout)


def query(workflow_id: str, name: str, result_type=None):
    async def ask(client):
        return await client.get_workflow_handle(workflow_id).query(name, result_type=result_type)

    return temporal.run(ask)
