"""Admin actions (permissions, confirmation, log entry) and a 1,000-invitee fan-out counted exactly once."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from invitations.models import Invitation, InvitationDelivery
from invitations.payloads import Invitee
from invitations.selectors import organization_invitations, organization_members

from .conftest import HISTORIES  # noqa: E402
from .helpers import fan_out, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
CHANGELIST = "/admin/invitations/invitation/"


def staff(*perms: str) -> Client:
    user = get_user_model().objects.create_user("support", "support@a4c.test", "support password 1", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_invitation", *perms]))
    client = Client()
    client.force_login(user)
    return client


def test_resend_and_revoke_need_their_own_permission_and_a_confirmation(
    organization, users_worker, celery_worker, smtp
):
    ids = fan_out(organization, [Invitee(email="x@example.org"), Invitee(email="y@example.org")]).invitation_ids
    viewer = staff()
    page = viewer.get(CHANGELIST)
    assert page.status_code == 200 and b"x@example.org" in page.content
    assert b"resend_selected" not in page.content and b"revoke_selected" not in page.content
    detail = viewer.get(f"{CHANGELIST}{ids[0]}/change/")
    assert b"Email deliveries" in detail.content and b"/workflows/invitation-" in detail.content
    get_user_model().objects.all().delete()

    support = staff("resend_invitation", "revoke_invitation")
    confirm = support.post(CHANGELIST, {"action": "revoke_selected", "_selected_action": [ids[1]]})
    assert confirm.status_code == 200 and b"Revoke invitations" in confirm.content
    assert Invitation.objects.get(pk=ids[1]).status == "pending", "nothing happens before confirming"
    done = support.post(
        CHANGELIST, {"action": "revoke_selected", "_selected_action": [ids[1]], "post": "yes"}, follow=True
    )
    assert b"Revoked 1 invitation(s)." in done.content
    assert Invitation.objects.get(pk=ids[1]).status == "revoked"

    support.post(CHANGELIST, {"action": "resend_selected", "_selected_action": [ids[0]], "post": "yes"})
    wait_until(lambda: InvitationDelivery.objects.filter(invitation_id=ids[0], kind="resend", status="sent").exists())
    assert len(smtp.to("x@example.org")) == 2
    assert LogEntry.objects.filter(object_id__in=ids).count() == 2

    assert [i.email for i in organization_invitations(organization, statuses=["revoked"])] == ["y@example.org"]
    assert list(organization_members(organization)) == []


@pytest.mark.slow
def test_a_thousand_invitees_are_each_emailed_and_counted_once(
    organization, users_worker, celery_worker, smtp, history_keeper
):
    invitees = [Invitee(email=f"person{i:04d}@example.org") for i in range(1000)]
    result = fan_out(organization, invitees, results_timeout=600)
    assert len(result.invitation_ids) == 1000 == len(set(result.invitation_ids))
    assert sorted(result.sent) == sorted(result.invitation_ids)
    assert not result.failed and not result.missing
    assert result.signals >= 1000
    assert len(smtp.wait_for(1000)) == 1000
    assert InvitationDelivery.objects.filter(status="sent").count() == 1000
    from invitations.workflows import InvitationDeliveryWorkflow

    history_keeper(result.workflow_id, InvitationDeliveryWorkflow, HISTORIES / "delivery_big_fan_out.json")
