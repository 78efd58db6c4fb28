"""Inviting people to an active organization after its bootstrap: service, admin page and API, on real parts."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from eventstore.models import Event
from invitations import services
from invitations.models import Invitation, InvitationDelivery, Membership
from invitations.payloads import Invitee, invitation_workflow_id
from temporal_bridge.client import describe_workflow
from tests.support.organizations import organization_make

from .helpers import accept_new, fan_out_wait, open_link, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _status(workflow_id: str) -> str:
    from temporalio.service import RPCError

    try:
        return describe_workflow(workflow_id).status.name
    except RPCError:
        return ""


@pytest.fixture
def active():
    return organization_make("Bayside Clinic", active=True)


def test_an_invitee_of_an_active_organization_gets_the_email_and_joins(active, users_worker, celery_worker, smtp):
    invited = services.organization_invite(
        organization_id=active,
        invitees=[Invitee(email="Nurse@Example.org", first_name="Nia", last_name="Reyes", role="clinician")],
    )
    assert invited.lifecycle_started
    (invitation_id,) = invited.invitation_ids
    # The fan-out workflow starts each invitation's lifecycle workflow, once it has run its first step.
    assert wait_until(lambda: _status(invitation_workflow_id(invitation_id))) == "RUNNING"
    smtp.wait_for(1)
    assert "Bayside Clinic" in smtp.text(smtp.to("Nurse@Example.org")[0])
    # The invitations' own fan-out workflow waits for this email, as a bootstrap's does, and counts it.
    delivery = wait_until(lambda: InvitationDelivery.objects.filter(invitation_id=invitation_id, status="sent").first())
    assert delivery.notify_workflow_id == invited.workflow_id
    counted = fan_out_wait(invited.workflow_id)
    assert counted.invitation_ids == [invitation_id] and counted.sent == [invitation_id]

    browser = Client()
    open_link(browser, smtp.token_for("Nurse@Example.org"))
    done = accept_new(browser, first_name="Nia", last_name="Reyes")
    assert done.status_code == 200 and b"Welcome to Bayside Clinic" in done.content
    user = get_user_model().objects.get(email__iexact="nurse@example.org")
    membership = wait_until(lambda: Membership.objects.filter(organization_id=active, user=user).first())
    assert membership.role == "clinician"
    with pytest.raises(services.AlreadyInvited, match="'nurse@example.org' is already a member"):
        services.organization_invite(organization_id=active, invitees=[Invitee(email="nurse@example.org")])


def test_only_an_active_organization_takes_invitations(temporal_env):
    pending = organization_make("Still Bootstrapping")
    with pytest.raises(services.OrganizationNotActive, match="Still Bootstrapping is pending: only an active"):
        services.organization_invite(organization_id=pending, invitees=[Invitee(email="a@example.org")])
    assert not Invitation.objects.exists()


def test_a_list_with_one_bad_or_already_invited_address_writes_nothing(active, temporal_env):
    services.organization_invite(organization_id=active, invitees=[Invitee(email="first@example.org")])
    events_before = Event.objects.count()
    with pytest.raises(services.AlreadyInvited) as refused:
        services.organization_invite(
            organization_id=active, invitees=[Invitee(email="new@example.org"), Invitee(email="FIRST@example.org")]
        )
    assert str(refused.value) == "invitee 2: 'FIRST@example.org' already has a pending invitation (resend it instead)"
    with pytest.raises(services.InvalidInvitationData, match="invitee 2: 'not-an-address' is not a valid email"):
        services.organization_invite(
            organization_id=active, invitees=[Invitee(email="new@example.org"), Invitee(email="not-an-address")]
        )
    assert Event.objects.count() == events_before
    assert list(Invitation.objects.values_list("email", flat=True)) == ["first@example.org"]
    assert InvitationDelivery.objects.count() == 1


def test_a_member_is_not_invited_again_but_someone_whose_invitation_ended_is(active, temporal_env):
    (first,) = services.organization_invite(
        organization_id=active, invitees=[Invitee(email="gone@example.org")]
    ).invitation_ids
    services.invitation_revoke(invitation_id=first, reason="sent to the wrong clinic")
    (again,) = services.organization_invite(
        organization_id=active, invitees=[Invitee(email="gone@example.org")]
    ).invitation_ids
    assert again != first
    assert Invitation.objects.get(pk=again).status == "pending"


def test_emails_reported_before_the_fan_out_lists_its_invitations_still_count(
    active, temporal_worker, celery_worker, smtp
):
    """With no worker on the users queue yet, the emails go out and their reports reach the fan-out workflow before
    it has run its first step: its first task then holds the reports before the generate step's result."""
    invited = services.organization_invite(
        organization_id=active, invitees=[Invitee(email="early1@example.org"), Invitee(email="early2@example.org")]
    )
    assert invited.lifecycle_started
    smtp.wait_for(2)
    wait_until(lambda: InvitationDelivery.objects.filter(reported_at__isnull=False).count() == 2)
    with temporal_worker(["users"]):
        counted = fan_out_wait(invited.workflow_id)
    assert sorted(counted.sent) == sorted(invited.invitation_ids) and not counted.failed and not counted.missing
    assert len(smtp.to("early1@example.org")) == 1 and len(smtp.to("early2@example.org")) == 1


def test_without_temporal_the_invitations_and_emails_still_stand(active, settings, celery_worker, smtp):
    from temporal_bridge.client import temporal
    from tests.support.net import free_port

    settings.TEMPORAL_ADDRESS = f"127.0.0.1:{free_port()}"
    temporal.reset()
    invited = services.organization_invite(organization_id=active, invitees=[Invitee(email="later@example.org")])
    assert not invited.lifecycle_started
    smtp.wait_for(1)
    assert Invitation.objects.get(pk=invited.invitation_ids[0]).status == "pending"


def _staff(*perms: str):
    user = get_user_model().objects.create_user("support", "support@example.org", "pw-for-support-42", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return get_user_model().objects.get(pk=user.pk)  # fresh, without the permission cache


def test_support_invites_from_the_organization_page(active, temporal_env, celery_worker, smtp):
    browser = Client()
    browser.force_login(_staff("invitations.invite_users", "organizations.view_organization"))
    change = f"/admin/organizations/organization/{active}/change/"
    invite = f"/admin/organizations/organization/{active}/invite/"
    assert invite.encode() in browser.get(change).content

    form = {"invitees-TOTAL_FORMS": "3", "invitees-INITIAL_FORMS": "0"}
    rows = [("doc@example.org", "Dee", "clinician"), ("desk@example.org", "", "staff"), ("", "", "clinician")]
    for n, (email, first, role) in enumerate(rows):
        form |= {f"invitees-{n}-email": email, f"invitees-{n}-first_name": first, f"invitees-{n}-role": role}
    done = browser.post(invite, form)
    assert done.status_code == 302 and done["Location"] == change
    assert sorted(Invitation.objects.values_list("email", "role")) == [
        ("desk@example.org", "staff"),
        ("doc@example.org", "clinician"),
    ]
    entry = LogEntry.objects.get(object_id=str(active))
    assert entry.get_change_message() == "Invited doc@example.org (clinician), desk@example.org (staff)"
    assert len(smtp.wait_for(2)) == 2

    again = browser.post(invite, form)
    assert again.status_code == 200
    assert b"already has a pending invitation (resend it instead)" in again.content
    assert Invitation.objects.count() == 2


def test_inviting_needs_its_own_permission(active):
    browser = Client()
    browser.force_login(_staff("organizations.view_organization"))
    assert b"/invite/" not in browser.get(f"/admin/organizations/organization/{active}/change/").content
    assert browser.get(f"/admin/organizations/organization/{active}/invite/").status_code == 403


def test_the_api_refuses_an_invitee_without_a_role(active):
    """Leaving the role out is a field error, never an organization admin by default."""
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(_staff("invitations.invite_users"))
    url = f"/api/admin/organizations/{active}/invitations"
    response = api.post(url, {"invitees": [{"email": "norole@example.org"}]}, format="json")
    assert response.status_code == 400
    assert response.json() == {"invitees": {"0": {"role": ["This field is required."]}}}  # DRF's shape: by index
    assert not Invitation.objects.exists()


def test_the_api_invites_and_explains_refusals(active, temporal_env, celery_worker, smtp):
    from rest_framework.test import APIClient

    api = APIClient()
    url = f"/api/admin/organizations/{active}/invitations"
    body = {"invitees": [{"email": "api@example.org", "role": "staff"}]}
    support = _staff()
    api.force_authenticate(support)
    assert api.post(url, body, format="json").status_code == 403
    assert not Invitation.objects.exists()

    support.user_permissions.add(Permission.objects.get(codename="invite_users"))
    api.force_authenticate(get_user_model().objects.get(pk=support.pk))
    created = api.post(url, body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["lifecycle_started"] is True
    (invitation_id,) = created.json()["invitation_ids"]
    assert Invitation.objects.get(pk=invitation_id).role == "staff"

    duplicate = api.post(url, body, format="json")
    assert duplicate.status_code == 400
    assert duplicate.json() == {
        "invitees": [{"email": ["'api@example.org' already has a pending invitation (resend it instead)."]}]
    }
    assert api.post(url, {"invitees": []}, format="json").status_code == 400
    pending = organization_make("Not Yet")
    refused = api.post(f"/api/admin/organizations/{pending}/invitations", body, format="json")
    assert refused.status_code == 409 and "only an active organization" in refused.json()["detail"]
    missing = "/api/admin/organizations/00000000-0000-4000-8000-000000000000/invitations"
    assert api.post(missing, body, format="json").status_code == 404
