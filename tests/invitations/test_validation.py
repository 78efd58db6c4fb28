"""The one invitee validator: lists checked whole before anything is written."""

import pytest

from eventstore.events import EventMetadata
from eventstore.models import Event
from invitations import services
from invitations.emails import MAX_EMAIL_LENGTH
from invitations.models import Invitation
from invitations.payloads import Invitee

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "address",
    [
        "a" * (MAX_EMAIL_LENGTH - len("@example.org") + 1) + "@example.org",
        "ﬁ" * 130 + "@example.org",  # 142 characters as typed, 272 once NFKC turns each ligature into "fi"
    ],
)
def test_an_address_too_long_to_store_is_refused_before_anything_is_written(organization, address):
    with pytest.raises(services.InvalidInvitationData, match=f"longer than {MAX_EMAIL_LENGTH} characters"):
        services.invitations_generate(
            organization_id=organization,
            invitees=[Invitee(email="first@example.org"), Invitee(email=address)],
            key_prefix="test-long",
            metadata=EventMetadata(),
        )
    assert not Invitation.objects.exists()
    assert not Event.objects.filter(stream_type="invitation").exists()
