"""The invitation services: resend, and revoking every pending invitation as a failed bootstrap's compensation."""

import pytest
from temporalio.api.enums.v1 import EventType

from eventstore.events import EventMetadata
from eventstore.models import Event
from invitations import acceptance, deliveries, services
from invitations.models import Invitation, InvitationDelivery
from invitations.payloads import Invitee
from invitations.selectors import TokenState, token_check
from temporal_bridge.client import temporal

pytestmark = pytest.mark.django_db


def test_a_resend_supersedes_earlier_links_at_once_even_if_its_email_never_goes_out(organization):
    (invitation_id,) = services.invitations_generate(
        organization_id=organization,
        invitees=[Invitee(email="leak@example.org")],
        key_prefix="t",
        metadata=EventMetadata(),
    )
    deliveries.invitation_emails_enqueue(
        organization_id=organization, invitation_ids=[invitation_id], notify_workflow_id="", scope="t"
    )
    claim = deliveries.delivery_claim(delivery_id=str(InvitationDelivery.objects.get().pk))
    deliveries.delivery_mark_sent(delivery=claim.delivery, selector=claim.token.selector)
    assert token_check(claim.token.value).state == TokenState.VALID

    assert services.invitation_resend(invitation_id=invitation_id) is not None  # its task is never run here
    assert token_check(claim.token.value).state == TokenState.SUPERSEDED


def test_compensation_takes_back_the_roles_accepted_invitations_granted(organization, temporal_env):
    """Invitees may accept while the bootstrap waits for its emails; if it then fails, their memberships of the
    failed organization go with it (as events, so a rebuild agrees)."""
    from eventstore.services import projections_rebuild
    from invitations.models import Membership

    accepted, pending = services.invitations_generate(
        organization_id=organization,
        invitees=[Invitee(email="early@example.org", role="clinician"), Invitee(email="later@example.org")],
        key_prefix="t",
        metadata=EventMetadata(),
    )
    deliveries.invitation_emails_enqueue(
        organization_id=organization, invitation_ids=[accepted], notify_workflow_id="", scope="t"
    )
    claim = deliveries.delivery_claim(delivery_id=str(InvitationDelivery.objects.get().pk))
    deliveries.delivery_mark_sent(delivery=claim.delivery, selector=claim.token.selector)
    user = acceptance.invitation_accept(selector=claim.token.selector, password="a long enough password 42").user
    assert Membership.objects.get(organization_id=organization).user == user

    def compensate():
        return services.invitations_revoke_pending(
            organization_id=organization, reason="Bootstrap failed", key_prefix="wf/1/revoke", metadata=EventMetadata()
        )

    assert compensate() == [pending]
    assert compensate() == [], "a retried step finds everything done"
    assert not Membership.objects.exists()
    assert Event.objects.filter(event_type="user.role_revoked", stream_id=str(user.pk)).count() == 1
    assert Invitation.objects.get(pk=accepted).status == "accepted", "what happened stays recorded"
    projections_rebuild(names=["memberships"])
    assert not Membership.objects.exists()


def test_compensation_signals_only_the_invitations_its_own_step_revoked(organization, temporal_env):
    """A later bootstrap attempt's compensation leaves the workflows of an earlier attempt's invitations alone."""
    from invitations.payloads import invitation_workflow_id

    def generate(email: str, prefix: str) -> str:
        (invitation_id,) = services.invitations_generate(
            organization_id=organization, invitees=[Invitee(email=email)], key_prefix=prefix, metadata=EventMetadata()
        )
        return invitation_id

    def compensate(prefix: str) -> list[str]:
        return services.invitations_revoke_pending(
            organization_id=organization, reason="Bootstrap failed", key_prefix=prefix, metadata=EventMetadata()
        )

    def signals(invitation_id: str) -> int:
        workflow_id = invitation_workflow_id(invitation_id)
        history = temporal.run(lambda client: client.get_workflow_handle(workflow_id).fetch_history())
        return sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED for e in history.events)

    earlier = generate("earlier@example.org", "attempt-1")
    assert compensate("wf/1/revoke") == [earlier]
    later = generate("later@example.org", "attempt-2")
    assert compensate("wf/2/revoke") == [later]
    assert (signals(earlier), signals(later)) == (1, 1)
