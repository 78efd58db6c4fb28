import re
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


def open_link(client, token: str):
    """Follow an invitation link the way a browser does: the token URL, then the page it redirects to."""
    moved = client.get(f"/invitations/accept/{token}/")
    assert moved.status_code in (302, 429), moved.status_code
    return client.get("/invitations/accept/") if moved.status_code == 302 else moved


def act(client, action: str, **data):
    """POST one of the landing page's forms, as the page now shown in this browser fills it in."""
    shown = re.search(r'name="invitation" value="([^"]*)"', client.get("/invitations/accept/").content.decode())
    return client.post("/invitations/accept/", {"action": action, "invitation": shown[1] if shown else "", **data})


def accept_new(client, password: str = "correct horse battery staple 42", **names):  # noqa: S107
    return act(client, "accept", password1=password, password2=password, **names)


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.1):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
