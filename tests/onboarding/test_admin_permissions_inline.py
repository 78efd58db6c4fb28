"""The onboarding request's invitee inline follows the invitee model permissions, and the bootstrap's
confirmation page shows who will be invited."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from onboarding.models import OnboardingRequest
from tests.onboarding.test_admin_and_api import changelist, make_request, staff, support  # noqa: F401 (support is a fixture)

pytestmark = pytest.mark.django_db
ALL_INVITEE_PERMISSIONS = [f"{action}_onboardinginvitee" for action in ("view", "add", "change", "delete")]
TWO_INVITEES = [
    {"email": "ann@example.test", "role": "organization_admin"},
    {"email": "bo@example.test", "role": "clinician"},
]


def log_in_editor(client, invitee_permissions: list[str]):
    """Staff who may add and change onboarding requests, with these permissions on their invitees."""
    user = staff("editor", can_bootstrap=False)
    invitee = Permission.objects.filter(content_type__app_label="onboarding", codename__in=ALL_INVITEE_PERMISSIONS)
    user.user_permissions.remove(*invitee)
    user.user_permissions.add(*invitee.filter(codename__in=invitee_permissions))
    client.force_login(user)
    return client


def post_invitee_edits(client, request: OnboardingRequest):
    """The change form, saved with the first invitee's address changed, the second deleted and one added."""
    ann, bo = request.invitees.all()
    rows = [
        {"id": ann.pk, "email": "mallory@example.test", "role": "organization_admin"},
        {"id": bo.pk, "email": bo.email, "role": bo.role, "DELETE": "on"},
        {"email": "eve@example.test", "role": "staff"},
    ]
    form = {
        "name": request.name,
        "type": request.type,
        "subdomain": request.subdomain,
        "parent": "",
        "invitees-TOTAL_FORMS": str(len(rows)),
        "invitees-INITIAL_FORMS": "2",
        "invitees-MIN_NUM_FORMS": "1",
        "invitees-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        form |= {f"invitees-{index}-{key}": value for key, value in {"request": request.pk, **row}.items()}
    return client.post(reverse("admin:onboarding_onboardingrequest_change", args=[request.pk]), form)


def invitee_emails(request: OnboardingRequest) -> list[str]:
    return list(request.invitees.order_by("email").values_list("email", flat=True))


@pytest.mark.parametrize("invitee_permissions", [[], ["view_onboardinginvitee"]], ids=["none", "view only"])
def test_staff_without_invitee_permissions_cannot_add_change_or_delete_invitees(client, invitee_permissions):
    request = make_request(invitees=TWO_INVITEES)
    editor = log_in_editor(client, invitee_permissions)
    assert post_invitee_edits(editor, request).status_code == 302, "saved, without the invitee rows"
    assert invitee_emails(request) == ["ann@example.test", "bo@example.test"]


def test_staff_with_invitee_permissions_edit_invitees_until_the_bootstrap_starts(client):
    request = make_request(invitees=TWO_INVITEES)
    editor = log_in_editor(client, ALL_INVITEE_PERMISSIONS)
    assert post_invitee_edits(editor, request).status_code == 302
    assert invitee_emails(request) == ["eve@example.test", "mallory@example.test"]

    started = make_request(name="Started Clinic", invitees=TWO_INVITEES)
    OnboardingRequest.objects.filter(pk=started.pk).update(bootstrap_started_at=timezone.now(), bootstrap_attempts=1)
    assert post_invitee_edits(editor, OnboardingRequest.objects.get(pk=started.pk)).status_code == 302
    assert invitee_emails(started) == ["ann@example.test", "bo@example.test"]


def test_the_bootstrap_confirmation_lists_each_requests_invitees(support):  # noqa: F811
    first = make_request(invitees=TWO_INVITEES)
    second = make_request(name="Second Clinic", invitees=[{"email": "cy@example.test", "role": "organization_admin"}])
    form = {"action": "bootstrap_organization", "_selected_action": [first.pk, second.pk]}
    page = support.post(changelist(), form)
    assert page.status_code == 200
    html = page.content.decode()
    for email, role in [
        ("ann@example.test", "Organization admin"),
        ("bo@example.test", "Clinician"),
        ("cy@example.test", "Organization admin"),
    ]:
        assert f"{email} ({role})" in html, email
    assert not OnboardingRequest.objects.filter(bootstrap_started_at__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_a_bootstrap_started_while_the_change_form_saves_is_not_undone_by_it(client, temporal_env, monkeypatch):
    """The change form's save used to write back the request it had read, start marks included: a bootstrap
    started between its read and its write was shown as not started (editable, deletable) while its run went on."""
    import threading

    from django.db import connection

    from onboarding import services
    from onboarding.forms import OnboardingRequestForm

    request = make_request(invitees=TWO_INVITEES)
    log_in_editor(client, ALL_INVITEE_PERMISSIONS)
    starter = threading.Thread(
        target=lambda: (services.organization_bootstrap_start(request=request), connection.close())
    )
    clean = OnboardingRequestForm.clean

    def start_meanwhile(form):
        starter.start()  # another staff member's start, between the form's read of the row and its write
        starter.join(timeout=2)  # it waits for this save to commit (or, unlocked, is done at once)
        return clean(form)

    monkeypatch.setattr(OnboardingRequestForm, "clean", start_meanwhile)
    response = post_invitee_edits(client, request)
    starter.join(timeout=30)
    assert response.status_code == 302 and not starter.is_alive()
    request.refresh_from_db()
    assert request.bootstrap_started_at is not None and request.bootstrap_attempts == 1
    # The start came second, so it read the saved invitees and invites them.
    assert invitee_emails(request) == ["eve@example.test", "mallory@example.test"]
