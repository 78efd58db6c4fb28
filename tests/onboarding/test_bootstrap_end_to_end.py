"""The whole journey: a bootstrap (organizations' service and workflow) invites, the emails arrive over SMTP
through Celery, the invitee accepts from the link, and ends up with an account holding the role."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from invitations.models import Invitation, Membership
from invitations.payloads import InvitationOutcome, invitation_workflow_id
from onboarding import services as onboarding_services
from onboarding.payloads import BootstrapResult, bootstrap_workflow_id
from organizations.models import Organization
from tests.invitations.helpers import accept_new, open_link, workflow_result

pytestmark = pytest.mark.django_db(transaction=True)


def bootstrap(invitees: list[dict]) -> str:
    request = onboarding_services.onboarding_request_create(
        name="Harbor Health", type="provider", subdomain=f"harbor-{uuid.uuid4().hex[:8]}", invitees=invitees
    )
    onboarding_services.organization_bootstrap_start(request=request)
    return str(request.organization_id)


def test_bootstrap_emails_arrive_and_the_invitee_accepts(local_dns, temporal_worker, celery_worker, smtp):
    with temporal_worker():
        organization_id = bootstrap(
            [
                {"email": "Lead@Example.test", "first_name": "Lee", "role": "organization_admin"},
                {"email": "nurse@example.test", "first_name": "Nia", "role": "clinician"},
            ]
        )
        result = workflow_result(bootstrap_workflow_id(organization_id), BootstrapResult, timeout=120)
        assert (result.invitations.total, result.invitations.sent, result.invitations.failed) == (2, 2, 0)
        assert Organization.objects.get(pk=organization_id).status == "active"

        browser = Client()
        assert open_link(browser, smtp.token_for("nurse@example.test")).status_code == 200
        assert accept_new(browser, first_name="Nia").status_code == 200
        invitation = Invitation.objects.get(organization_id=organization_id, email_canonical="nurse@example.test")
        outcome = workflow_result(invitation_workflow_id(str(invitation.pk)), InvitationOutcome)

    user = get_user_model().objects.get(username="nurse@example.test")
    assert outcome.status == "accepted" and outcome.user_id == user.pk
    assert Membership.objects.get(user=user, organization_id=organization_id).role == "clinician"
    assert Invitation.objects.get(email_canonical="lead@example.test").status == "pending"


@pytest.mark.slow
def test_a_bootstrap_with_a_thousand_invitees_counts_each_email_once(
    settings, local_dns, temporal_worker, celery_worker, smtp
):
    settings.BOOTSTRAP_EMAIL_RESULTS_TIMEOUT = 600
    invitees = [{"email": f"member{i:04d}@example.test", "role": "staff"} for i in range(999)]
    invitees.append({"email": "boss@example.test", "role": "organization_admin"})
    with temporal_worker():
        organization_id = bootstrap(invitees)
        result = workflow_result(bootstrap_workflow_id(organization_id), BootstrapResult, timeout=900)
    assert (result.invitations.total, result.invitations.sent, result.invitations.failed) == (1000, 1000, 0)
    assert len(smtp.wait_for(1000)) == 1000
    assert Invitation.objects.filter(organization_id=organization_id).count() == 1000
