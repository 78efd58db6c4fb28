"""Invitations end to end on real parts: activities on Temporal, Celery on Redis, an SMTP server, the views."""

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from eventstore.models import Event
from invitations.models import Invitation, InvitationDelivery, Membership
from invitations.payloads import InvitationOutcome, Invitee, invitation_workflow_id
from invitations.workflows import UserInvitationWorkflow  # noqa: E402

from .conftest import HISTORIES  # noqa: E402
from .helpers import fan_out, workflow_result

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "correct horse battery staple 42"


def test_emails_arrive_and_the_link_from_the_email_creates_the_account(
    organization, users_worker, celery_worker, smtp, history_keeper
):
    result = fan_out(
        organization,
        [
            Invitee(email="Ada@Example.org", first_name="Ada", last_name="Lovelace", role="organization_admin"),
            Invitee(email="grace@example.org", first_name="Grace"),
        ],
    )
    assert sorted(result.sent) == sorted(result.invitation_ids) and not result.failed and not result.missing

    smtp.wait_for(2)
    (message,) = smtp.to("Ada@Example.org")
    text, html = smtp.text(message), smtp.html(message)
    assert "Harbor Health" in text and "Organization admin" in text and "expires on" in text
    assert "Harbor Health" in html
    token = smtp.token_for("Ada@Example.org")
    link = next(line for line in text.splitlines() if "/invitations/accept/" in line)
    assert link.startswith("https://onboarding.example.test/invitations/accept/")

    browser = Client()
    moved = browser.get(urlsplit(link).path)
    assert moved.status_code == 302 and moved["Location"] == "/invitations/accept/"
    assert moved["Referrer-Policy"] == "no-referrer"
    landing = browser.get("/invitations/accept/")
    assert landing.status_code == 200 and landing["Referrer-Policy"] == "same-origin"
    assert b"Harbor Health" in landing.content and b"Organization admin" in landing.content
    assert token.encode() not in landing.content

    done = browser.post(
        "/invitations/accept/",
        {
            "action": "accept",
            "invitation": re.search(r'name="invitation" value="([^"]+)"', landing.content.decode())[1],
            "first_name": "Ada",
            "last_name": "Lovelace",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert done.status_code == 200, done.content.decode()
    assert b"Welcome to Harbor Health" in done.content
    user = get_user_model().objects.get(username="ada@example.org")
    assert browser.session["_auth_user_id"] == str(user.pk)
    assert Client().login(username=user.username, password=PASSWORD)
    assert Membership.objects.get(user=user, organization_id=organization).role == "organization_admin"

    invitation = Invitation.objects.get(email_canonical="ada@example.org")
    assert invitation.status == "accepted" and invitation.accepted_by_id == user.pk
    outcome = workflow_result(invitation_workflow_id(str(invitation.pk)), InvitationOutcome)
    assert outcome.status == "accepted" and outcome.user_id == user.pk
    history_keeper(
        invitation_workflow_id(str(invitation.pk)), UserInvitationWorkflow, HISTORIES / "lifecycle_accepted.json"
    )
    types = list(Event.objects.filter(stream_type="user", stream_id=str(user.pk)).values_list("event_type", flat=True))
    assert types == ["user.created", "user.role_granted"]
    assert Event.objects.filter(stream_id=str(invitation.pk), event_type="invitation.accepted").count() == 1
    assert InvitationDelivery.objects.get(invitation=invitation).status == "sent"
