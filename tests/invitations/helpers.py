import re
import uuid
from dataclasses import dataclass, field

from eventstore.events import EventMetadata
from invitations import services
from invitations.payloads import (
    DELIVERY_WORKFLOW_TYPE,
    InvitationDeliveryInput,
    InvitationDeliveryResult,
    Invitee,
)
from temporal_bridge.client import start_workflow_rollback_unsafe, temporal
from temporal_bridge.queues import TaskQueue


@dataclass(kw_only=True)
class FanOut:
    """What a test reads of a finished fan-out: the invitations, and each one's outcome as the workflow counted it."""

    workflow_id: str
    invitation_ids: list[str]
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # reported failed
    missing: list[str] = field(default_factory=list)  # never reported before the results timeout
    signals: int = 0
    revoked: int = 0


def fan_out_start(
    organization_id: str, invitees: list[Invitee], *, invited_by_id: int | None = None, results_timeout: float = 120.0
) -> str:
    """Start the real fan-out workflow (InvitationDeliveryWorkflow) for these invitees; returns its workflow id."""
    workflow_id = f"fanout-{uuid.uuid4()}"
    params = InvitationDeliveryInput(
        organization_id=organization_id,
        invitees=invitees,
        scope=f"test/{workflow_id}",
        invited_by_id=invited_by_id,
        results_timeout=results_timeout,
        activity_timeout=300.0,
        activity_retry_initial_interval=0.2,
        activity_max_attempts=5,
    )
    start_workflow_rollback_unsafe(DELIVERY_WORKFLOW_TYPE, params, id=workflow_id, queue=TaskQueue.USERS)
    return workflow_id


def fan_out_wait(workflow_id: str, timeout: float = 180.0) -> FanOut:
    result: InvitationDeliveryResult = workflow_result(workflow_id, InvitationDeliveryResult, timeout=timeout)
    missing = set(result.unreported_invitation_ids)
    failed = set(result.counts.failed_invitation_ids) - missing
    return FanOut(
        workflow_id=workflow_id,
        invitation_ids=result.invitation_ids,
        sent=sorted(set(result.invitation_ids) - failed - missing),
        failed=sorted(failed),
        missing=sorted(missing),
        signals=result.signals,
    )


def fan_out(
    organization_id: str,
    invitees: list[Invitee],
    *,
    invited_by_id: int | None = None,
    results_timeout: float = 120.0,
    revoke_after: bool = False,
) -> FanOut:
    """Generate invitations and send their emails through the real fan-out workflow (its activities, Celery and SMTP);
    wait for every delivery report. `revoke_after` then revokes every pending invitation as a failed bootstrap's
    compensation does."""
    workflow_id = fan_out_start(organization_id, invitees, invited_by_id=invited_by_id, results_timeout=results_timeout)
    outcome = fan_out_wait(workflow_id, timeout=results_timeout + 60)
    if revoke_after:
        revoked = services.invitations_revoke_pending(
            organization_id=organization_id,
            reason="test compensation",
            key_prefix=f"test/{workflow_id}/revoke",
            metadata=EventMetadata(correlation_id=organization_id),
        )
        outcome.revoked = len(revoked)
    return outcome


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


def invitation_link_token(organization_id: str, invitee) -> str:
    """An invitation whose email went out, made by the real services short of Celery and SMTP: its link's token."""
    from invitations import deliveries
    from invitations.models import InvitationDelivery

    (invitation_id,) = services.invitations_generate(
        organization_id=organization_id, invitees=[invitee], key_prefix=f"t/{uuid.uuid4()}", metadata=EventMetadata()
    )
    deliveries.invitation_emails_enqueue(
        organization_id=organization_id, invitation_ids=[invitation_id], notify_workflow_id="", scope="t"
    )
    claim = deliveries.delivery_claim(delivery_id=str(InvitationDelivery.objects.get(invitation_id=invitation_id).pk))
    deliveries.delivery_mark_sent(delivery=claim.delivery, selector=claim.token.selector)
    return claim.token.value
