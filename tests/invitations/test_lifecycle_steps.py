"""The lifecycle workflow's steps (invitations.lifecycle), run directly."""

import pytest

from eventstore.events import EventMetadata
from eventstore.models import Event
from invitations import deliveries, lifecycle, services
from invitations.models import InvitationDelivery
from invitations.payloads import Invitee

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # the publish runs when the step's transaction commits
def test_a_retried_reminder_publishes_its_email_again(organization, monkeypatch):
    """The reminder step commits its delivery row and event, then publishes the task. If the broker refuses that
    publish, Temporal runs the step again, and the email must still go out."""
    from kombu.exceptions import OperationalError

    (invitation_id,) = services.invitations_generate(
        organization_id=organization,
        invitees=[Invitee(email="remind@example.org")],
        key_prefix="test-remind",
        metadata=EventMetadata(),
    )
    published: list[str] = []

    def publish(delivery_ids):
        if not published:
            published.append("refused")
            raise OperationalError("broker briefly unavailable")
        published.extend(str(d) for d in delivery_ids)

    monkeypatch.setattr(deliveries, "deliveries_enqueue_rollback_unsafe", publish)
    remind = {"invitation_id": invitation_id, "scope": f"{invitation_id}/remind", "metadata": EventMetadata()}
    with pytest.raises(OperationalError):
        lifecycle.invitation_remind(**remind)
    assert lifecycle.invitation_remind(**remind) is True
    delivery = InvitationDelivery.objects.get(invitation_id=invitation_id, kind="reminder")
    assert published == ["refused", str(delivery.pk)]
    assert Event.objects.filter(event_type="invitation.reminded", stream_id=invitation_id).count() == 1
