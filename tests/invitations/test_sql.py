"""The hand-written reads of invitations.sql return what their ORM versions in invitations.selectors return."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from eventstore.catalogue import EventType, StreamType
from eventstore.events import NewEvent
from eventstore.services import events_append
from invitations.models import InvitationDelivery
from invitations.selectors import (
    NO_INVITER,
    invitation_page,
    invitation_page_orm,
    outgoing_email,
    outgoing_email_orm,
)
from invitations.tokens import token_issue

ALIASES = ["default", "sqlite"]


def organization(using: str) -> str:
    org_id = str(uuid.uuid4())
    subdomain = f"s{org_id[:12]}"
    data = {"name": "Acme Health", "type": "provider", "subdomain": subdomain, "domain": f"{subdomain}.a4c.test"}
    events_append(
        stream_type=StreamType.ORGANIZATION,
        stream_id=org_id,
        events=[NewEvent(EventType.ORGANIZATION_CREATED, data)],
        using=using,
    )
    return org_id


def invitation(using: str, email: str, *, invited_by_id: int | None = None) -> tuple[str, str]:
    """A pending invitation with an issued token, as its events make it; returns its id and the token's selector."""
    invitation_id, token = str(uuid.uuid4()), token_issue()
    data = {
        "organization_id": organization(using),
        "email": email,
        "email_canonical": email.lower(),
        "first_name": "Ann",
        "last_name": "Smith",
        "role": "organization_admin",
        "expires_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
        "invited_by_id": invited_by_id,
        "bootstrap_workflow_id": "",
    }
    issued = {"selector": token.selector, "verifier_hash": token.verifier_hash, "purpose": "invitation"}
    for event in (NewEvent(EventType.INVITATION_CREATED, data), NewEvent(EventType.INVITATION_TOKEN_ISSUED, issued)):
        events_append(stream_type=StreamType.INVITATION, stream_id=invitation_id, events=[event], using=using)
    return invitation_id, token.selector


def delivery(using: str, invitation_id: str, **fields) -> str:
    now = datetime.now(UTC)
    row = InvitationDelivery.objects.using(using).create(
        id=uuid.uuid4(), invitation_id=invitation_id, kind="invitation", queued_at=now, updated_at=now, **fields
    )
    return str(row.pk)


def user(using: str, username: str, **fields):
    return get_user_model()._default_manager.db_manager(using).create_user(username, password="unused", **fields)


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("using", ALIASES)
def test_invitation_page_equals_its_orm_version(using):
    inviter = user(using, "inviter", first_name="Ines", last_name="Vance", email="ines@example.org")
    nameless = user(using, "nameless", email="nameless@example.org")
    user(using, "someone", email="Existing.Person@Example.org")  # the invitee's account, found case-insensitively
    cases = {
        "inviter, no account": invitation(using, "new.person@example.org", invited_by_id=inviter.pk),
        "no inviter, an account": invitation(using, "existing.person@example.org"),
        "an inviter known by username": invitation(using, "third@example.org", invited_by_id=nameless.pk),
    }
    pages = {name: invitation_page(selector, using=using) for name, (_, selector) in cases.items()}
    for name, (invitation_id, selector) in cases.items():
        assert pages[name] == invitation_page_orm(selector, using=using), name
        assert pages[name].invitation_id == invitation_id and pages[name].issued_version == 2
    assert (pages["inviter, no account"].inviter, pages["inviter, no account"].account_exists) == ("Ines Vance", False)
    assert (pages["no inviter, an account"].inviter, pages["no inviter, an account"].account_exists) == (
        NO_INVITER,
        True,
    )
    assert pages["an inviter known by username"].inviter == "nameless"
    for unknown in ("", "no-such-selector"):
        assert invitation_page(unknown, using=using) is None
        assert invitation_page_orm(unknown, using=using) is None


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("using", ALIASES)
def test_outgoing_email_equals_its_orm_version(using):
    inviter = user(using, "inviter", first_name="Ines", last_name="Vance", email="ines@example.org")
    invited, _ = invitation(using, "new.person@example.org", invited_by_id=inviter.pk)
    uninvited, _ = invitation(using, "other.person@example.org")
    later = datetime.now(UTC) + timedelta(minutes=5)
    cases = {
        "inviter, fresh": delivery(using, invited),
        "no inviter, claimed and reported": delivery(
            using, uninvited, status="sending", attempts=2, claimed_until=later, reported_at=later
        ),
    }
    for name, delivery_id in cases.items():
        found = outgoing_email(delivery_id, using=using)
        assert found == outgoing_email_orm(delivery_id, using=using), name
        assert found.id == delivery_id
    assert outgoing_email(cases["inviter, fresh"], using=using).inviter == "Ines Vance"
    claimed = outgoing_email(cases["no inviter, claimed and reported"], using=using)
    assert (claimed.inviter, claimed.claimed_until, claimed.reported_at) == (NO_INVITER, later, later)
    unknown = str(uuid.uuid4())
    assert outgoing_email(unknown, using=using) is None
    assert outgoing_email_orm(unknown, using=using) is None
