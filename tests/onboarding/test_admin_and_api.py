"""The admin action, status page and REST API: permissions, validation, conflicts and the rollback switch.

Long because the admin and the API are held to the same behaviour, case by case.
"""

import re
import time
import uuid
from html import unescape

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone
from temporalio.client import WorkflowExecutionStatus

from onboarding import services
from onboarding.models import OnboardingRequest
from onboarding.payloads import bootstrap_workflow_id
from organizations.models import Organization
from temporal_bridge.client import TemporalUnavailable, describe_workflow, temporal

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/admin/organizations/bootstrap"


def payload(**overrides) -> dict:
    return {
        "name": "Lakeside Clinic",
        "type": "provider",
        "subdomain": f"lake-{uuid.uuid4().hex[:8]}",
        "invitees": [{"email": "lee@example.test", "first_name": "Lee", "role": "organization_admin"}],
        **overrides,
    }


def staff(username: str, *, can_bootstrap: bool) -> User:
    user = User.objects.create_user(username, f"{username}@example.test", "pw-" + uuid.uuid4().hex, is_staff=True)
    perms = ["view_organization", "view_onboardingrequest", "add_onboardingrequest", "change_onboardingrequest"]
    perms += [f"{action}_onboardinginvitee" for action in ("view", "add", "change", "delete")]
    if can_bootstrap:
        perms.append("bootstrap_organization")
    apps = ["organizations", "onboarding"]
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=apps, codename__in=perms))
    return User.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def support(client):
    client.force_login(staff("support", can_bootstrap=True))
    return client


@pytest.fixture
def viewer(client):
    client.force_login(staff("viewer", can_bootstrap=False))
    return client


# --- API ----------------------------------------------------------------------------------------------------


def test_api_starts_a_bootstrap_and_answers_202(support, temporal_env):
    response = support.post(API, payload(), content_type="application/json")
    assert response.status_code == 202, response.content
    body = response.json()
    organization_id = body["organization_id"]
    assert body["workflow_id"] == f"org-bootstrap-{organization_id}"
    assert body["status_url"].endswith(f"/api/admin/organizations/{organization_id}/bootstrap")
    assert response["Location"] == body["status_url"]
    assert OnboardingRequest.objects.get(organization_id=organization_id).bootstrap_started_at is not None
    assert describe_workflow(body["workflow_id"]).status == WorkflowExecutionStatus.RUNNING

    status = support.get(body["status_url"])
    assert status.status_code == 200
    assert status.json()["workflow_id"] == body["workflow_id"]
    assert status.json()["workflow_status"] == "RUNNING"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": ""}, "name", "may not be blank"),
        ({"name": "x" * 101}, "name", "no more than 100"),
        ({"type": "hospital"}, "type", "not a valid choice"),
        ({"subdomain": "Bad_Name"}, "subdomain", "lowercase"),
        ({"subdomain": "-dash"}, "subdomain", "Start and end with a letter or digit"),
        ({"subdomain": "ab"}, "subdomain", "3 to 63 characters"),
        ({"subdomain": "admin"}, "subdomain", "reserved"),
        ({"invitees": []}, "invitees", "Add at least one invitee"),
        ({"invitees": [{"email": "a@example.test", "role": "staff"}]}, "invitees", "organization admin role"),
        ({"invitees": [{"email": "not-an-email", "role": "organization_admin"}]}, "invitees", "valid email"),
        ({"invitees": [{"email": "a@example.test"}]}, "invitees", "{'role': ['This field is required.']}"),
        (
            {"invitees": [{"email": "a" * 243 + "@example.test", "role": "organization_admin"}]},
            "invitees",
            "at most 254 characters",
        ),
        ({"parent_id": str(uuid.uuid4())}, "parent_id", "No organization has this id"),
    ],
)
def test_api_rejects_bad_input_field_by_field_and_writes_nothing(support, temporal_env, overrides, field, message):
    response = support.post(API, payload(**overrides), content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()
    assert message in str(response.json()[field])
    assert not OnboardingRequest.objects.exists()


def test_a_list_past_the_invitee_cap_is_refused_whole(settings, support, temporal_env):
    settings.BOOTSTRAP_MAX_INVITEES = 3
    invitees = [{"email": f"m{i}@example.test", "role": "organization_admin"} for i in range(4)]
    response = support.post(API, payload(invitees=invitees), content_type="application/json")
    assert response.status_code == 400
    assert "At most 3 invitees per bootstrap; this list has 4." in str(response.json()["invitees"])
    assert not OnboardingRequest.objects.exists()
    assert support.post(API, payload(invitees=invitees[:3]), content_type="application/json").status_code == 202


def test_api_compares_invitee_emails_case_insensitively(support, temporal_env):
    invitees = [
        {"email": "Sam@Example.test", "role": "organization_admin"},
        {"email": "sam@example.TEST", "role": "staff"},
    ]
    response = support.post(API, payload(invitees=invitees), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["invitees"] == [
        {},
        {"email": ["sam@example.TEST is already invitee 1 (addresses are compared case-insensitively)."]},
    ]
    assert not OnboardingRequest.objects.exists()


def test_api_reports_row_errors_and_list_errors_together(support, temporal_env):
    invitees = [{"email": "lee@example.test", "role": "staff"}, {"email": "LEE@example.test", "role": "staff"}]
    response = support.post(API, payload(invitees=invitees), content_type="application/json")
    assert response.status_code == 400
    errors = response.json()["invitees"]
    assert "organization admin role" in str(errors["non_field_errors"])
    assert "already invitee 1" in str(errors["1"]["email"])
    assert not OnboardingRequest.objects.exists()


def test_a_start_that_temporal_refuses_leaves_the_request_startable(support, monkeypatch, caplog):
    from temporalio.service import RPCError, RPCStatusCode

    from onboarding import services

    def refuse(*args, **kwargs):
        raise RPCError("namespace rate limit exceeded", RPCStatusCode.RESOURCE_EXHAUSTED, b"")

    monkeypatch.setattr(services, "start_workflow_rollback_unsafe", refuse)
    response = support.post(API, payload(), content_type="application/json")
    assert response.status_code == 503
    # The client gets a plain reason; what Temporal said is for the log.
    detail = response.json()["detail"]
    assert detail == "Temporal is unavailable; the request is kept: POST its status_url to start it later."
    assert "RESOURCE_EXHAUSTED: namespace rate limit exceeded" in caplog.text
    request = OnboardingRequest.objects.get()
    assert (request.bootstrap_started_at, request.bootstrap_attempts) == (None, 0)


def test_a_start_whose_answer_times_out_after_temporal_took_it_stays_started(support, temporal_env, monkeypatch):
    """The server started the run but its answer never came (a timeout): undoing the request's mark would show a
    running bootstrap as not started, editable and deletable, and a second start would be refused confusingly."""
    start = services.start_workflow_rollback_unsafe

    def started_but_answer_lost(*args, **kwargs):
        start(*args, **kwargs)
        raise TemporalUnavailable("Temporal did not answer in time")

    monkeypatch.setattr(services, "start_workflow_rollback_unsafe", started_but_answer_lost)
    response = support.post(API, payload(), content_type="application/json")
    assert response.status_code == 202
    request = OnboardingRequest.objects.get()
    assert request.bootstrap_started_at is not None and request.bootstrap_attempts == 1
    workflow_id = bootstrap_workflow_id(str(request.organization_id))
    assert describe_workflow(workflow_id).status == WorkflowExecutionStatus.RUNNING
    temporal.run(lambda client: client.get_workflow_handle(workflow_id).terminate("test over"))


def test_api_answers_409_while_a_bootstrap_holds_the_subdomain(support, temporal_env, local_dns, temporal_worker):
    body = payload()
    with temporal_worker(["bootstrap"]):
        first = support.post(API, body, content_type="application/json").json()
        _wait(lambda: Organization.objects.filter(pk=first["organization_id"]).exists())
    second = support.post(API, {**body, "name": "Other"}, content_type="application/json")
    assert second.status_code == 409
    assert "already used" in second.json()["subdomain"][0]
    assert OnboardingRequest.objects.count() == 1


def test_api_needs_the_bootstrap_permission(viewer, client, temporal_env):
    assert viewer.post(API, payload(), content_type="application/json").status_code == 403
    assert viewer.get(f"/api/admin/organizations/{uuid.uuid4()}/bootstrap").status_code == 403
    client.logout()
    assert client.post(API, payload(), content_type="application/json").status_code in (401, 403)
    assert not OnboardingRequest.objects.exists()


def test_api_refuses_clearly_when_bootstrapping_is_switched_off(support, settings, temporal_env):
    settings.ENABLE_ORG_BOOTSTRAP = False
    response = support.post(API, payload(), content_type="application/json")
    assert response.status_code == 503
    assert "ENABLE_ORG_BOOTSTRAP=false" in response.json()["detail"]
    assert not OnboardingRequest.objects.exists()


def test_api_keeps_the_request_when_temporal_is_unreachable_and_starts_it_later(
    support, settings, temporal_env, caplog
):
    reachable = settings.TEMPORAL_ADDRESS
    settings.TEMPORAL_ADDRESS = "127.0.0.1:9"  # discard port: nothing listens
    settings.TEMPORAL_CLIENT_TIMEOUT = 3
    temporal.reset()
    response = support.post(API, payload(), content_type="application/json")
    assert response.status_code == 503
    body = response.json()
    # Temporal's internal address and the client library's error text are logged, not shown to the client.
    assert body["detail"] == "Temporal is unavailable; the request is kept: POST its status_url to start it later."
    assert "127.0.0.1:9" not in response.content.decode()
    assert "Temporal at 127.0.0.1:9" in caplog.text
    request = OnboardingRequest.objects.get()
    assert request.bootstrap_started_at is None and request.bootstrap_attempts == 0
    # The client learns where the kept request is, and starts it there once Temporal is back.
    assert body["organization_id"] == str(request.organization_id)
    assert body["status_url"].endswith(f"/api/admin/organizations/{request.organization_id}/bootstrap")
    settings.TEMPORAL_ADDRESS = reachable
    temporal.reset()
    started = support.post(body["status_url"])
    assert started.status_code == 202 and started.json()["organization_id"] == body["organization_id"]
    workflow_id = bootstrap_workflow_id(str(request.organization_id))
    assert describe_workflow(workflow_id).status == WorkflowExecutionStatus.RUNNING
    again = support.post(body["status_url"])
    assert again.status_code == 409 and "this one has not failed" in again.json()["detail"]
    assert OnboardingRequest.objects.get().bootstrap_attempts == 1
    temporal.run(lambda client: client.get_workflow_handle(workflow_id).terminate("test over"))


def test_api_status_of_an_unknown_organization_is_404(support):
    assert support.get(f"/api/admin/organizations/{uuid.uuid4()}/bootstrap").status_code == 404


def test_the_status_says_plainly_that_temporal_did_not_answer(support, settings, temporal_env, caplog):
    request = make_request()
    services.organization_bootstrap_start(request=request)  # no worker: it stays running
    reachable = settings.TEMPORAL_ADDRESS
    settings.TEMPORAL_ADDRESS = "127.0.0.1:9"  # discard port: nothing listens
    settings.TEMPORAL_CLIENT_TIMEOUT = 3
    temporal.reset()
    response = support.get(f"/api/admin/organizations/{request.organization_id}/bootstrap")
    settings.TEMPORAL_ADDRESS = reachable
    temporal.reset()
    assert response.status_code == 200
    body = response.json()
    assert (body["workflow_status"], body["problem"]) == ("UNKNOWN", "Temporal did not return the live state.")
    assert "127.0.0.1:9" not in response.content.decode()
    assert "Temporal at 127.0.0.1:9" in caplog.text
    workflow_id = bootstrap_workflow_id(str(request.organization_id))
    temporal.run(lambda client: client.get_workflow_handle(workflow_id).terminate("test over"))


def test_the_openapi_schema_documents_the_bootstrap_api(support):
    response = support.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    post = schema["paths"]["/api/admin/organizations/bootstrap"]["post"]
    assert set(post["responses"]) >= {"202", "400", "403", "409", "503"}
    status = schema["paths"]["/api/admin/organizations/{organization_id}/bootstrap"]
    assert {"get", "post"} <= set(status)
    assert set(status["post"]["responses"]) >= {"202", "400", "403", "404", "409", "503"}
    # The 503 names the kept request, so a client can start it later.
    unavailable = post["responses"]["503"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"organization_id", "status_url"} <= set(schema["components"]["schemas"][unavailable]["properties"])


def test_the_api_docs_are_for_staff_and_load_no_third_party_script(support):
    from django.test import Client

    assert Client().get("/api/schema/").status_code in (401, 403)
    # A person without a staff session is sent to the admin's login, and back here after it.
    assert Client().get("/api/docs/")["Location"] == "/admin/login/?next=/api/docs/"
    docs = support.get("/api/docs/")
    assert docs.status_code == 200
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', docs.content.decode())
    assert scripts and all(src.startswith("/static/drf_spectacular_sidecar/") for src in scripts), scripts


# --- Admin --------------------------------------------------------------------------------------------------


def make_request(**overrides) -> OnboardingRequest:
    fields = payload(**overrides)
    return services.onboarding_request_create(**fields)


def changelist() -> str:
    return reverse("admin:onboarding_onboardingrequest_changelist")


def test_the_action_asks_for_confirmation_then_starts_and_logs(support, temporal_env):
    request = make_request()
    form = {"action": "bootstrap_organization", "_selected_action": [request.pk]}
    confirm = support.post(changelist(), form)
    assert confirm.status_code == 200
    assert b"Yes, bootstrap 1 organization" in confirm.content
    assert OnboardingRequest.objects.get(pk=request.pk).bootstrap_started_at is None, "nothing before confirming"

    done = support.post(changelist(), {**form, "confirm": "yes"}, follow=True)
    assert b"Started 1 bootstrap" in done.content
    request.refresh_from_db()
    assert request.bootstrap_started_at is not None
    assert (
        describe_workflow(bootstrap_workflow_id(str(request.organization_id))).status == WorkflowExecutionStatus.RUNNING
    )
    entry = LogEntry.objects.get(object_id=str(request.pk))
    assert entry.get_change_message() == "Started the organization bootstrap."


def test_staff_without_the_permission_see_no_action_and_get_403(viewer, temporal_env):
    request = make_request()
    page = viewer.get(changelist())
    assert page.status_code == 200
    assert b"bootstrap_organization" not in page.content
    status_url = reverse("admin:organizations_organization_bootstrap", args=[request.organization_id])
    assert viewer.get(status_url).status_code == 403
    for name in ("retry", "cancel", "recheck_dns"):
        url = reverse(f"admin:organizations_organization_bootstrap_{name}", args=[request.organization_id])
        assert viewer.post(url).status_code == 403
    refused = viewer.post(
        changelist(), {"action": "bootstrap_organization", "_selected_action": [request.pk], "confirm": "yes"}
    )
    assert refused.status_code in (200, 302)
    assert OnboardingRequest.objects.get(pk=request.pk).bootstrap_started_at is None


def test_the_action_refuses_when_bootstrapping_is_switched_off(support, settings, temporal_env):
    settings.ENABLE_ORG_BOOTSTRAP = False
    request = make_request()
    form = {"action": "bootstrap_organization", "_selected_action": [request.pk], "confirm": "yes"}
    response = support.post(changelist(), form, follow=True)
    assert b"switched off (ENABLE_ORG_BOOTSTRAP=false)" in response.content
    assert OnboardingRequest.objects.get(pk=request.pk).bootstrap_started_at is None


def test_the_admin_form_checks_invitees_like_the_api(support):
    url = reverse("admin:onboarding_onboardingrequest_add")
    form = {
        "name": "Hillside",
        "type": "partner",
        "subdomain": "hillside",
        "invitees-TOTAL_FORMS": "2",
        "invitees-INITIAL_FORMS": "0",
        "invitees-MIN_NUM_FORMS": "1",
        "invitees-MAX_NUM_FORMS": "1000",
        "invitees-0-email": "Kim@Example.test",
        "invitees-0-role": "organization_admin",
        "invitees-1-email": "kim@example.test",
        "invitees-1-role": "staff",
    }
    response = support.post(url, form)
    assert response.status_code == 200
    assert b"is already invitee 1" in response.content
    assert not OnboardingRequest.objects.exists()
    form["invitees-1-email"] = "jo@example.test"
    assert support.post(url, form).status_code == 302
    created = OnboardingRequest.objects.get()
    assert created.invitees.count() == 2 and created.created_by.username == "support"


def test_the_status_page_shows_progress_timeline_and_temporal_link(support, local_dns, temporal_worker, mail_pipeline):
    request = make_request()
    with temporal_worker():
        services.organization_bootstrap_start(request=request)
        _wait(lambda: Organization.objects.filter(pk=request.organization_id, status="active").exists(), 60)
        url = reverse("admin:organizations_organization_bootstrap", args=[request.organization_id])
        page = support.get(url)
        fragment = support.get(url, {"partial": "progress"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Active" in html and "organization.activated" in html and "organization.dns_verified" in html
    assert f"/workflows/org-bootstrap-{request.organization_id}" in html
    assert 'data-step="activate_organization" data-status="done"' in html
    assert "served by the <strong>local</strong> DNS provider" in html
    # The fragment the page re-fetches holds the progress only, not the whole admin page.
    assert fragment.status_code == 200
    assert b"organization.activated" in fragment.content and b"<html" not in fragment.content
    # The invitations' events name the invitees: their data is shown only to those who may view events.
    assert "invitation.created" in html and "lee@example.test" not in html
    viewer = User.objects.get(username="support")
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label="eventstore", codename="view_event"))
    assert "lee@example.test" in support.get(url).content.decode()


def test_cancel_from_the_status_page_is_logged(support, settings, local_dns, temporal_worker):
    settings.BOOTSTRAP_DNS_PROPAGATION_WAIT = 120
    request = make_request()
    with temporal_worker():
        services.organization_bootstrap_start(request=request)
        _wait(lambda: Organization.objects.filter(pk=request.organization_id, dns_status="configured").exists())
        url = reverse("admin:organizations_organization_bootstrap_cancel", args=[request.organization_id])
        response = support.post(url, follow=True)
        assert b"Cancellation of Lakeside Clinic requested" in response.content
        _wait(lambda: Organization.objects.filter(pk=request.organization_id, status="failed").exists(), 60)
        # The API retries a failed bootstrap at its status URL: a new run, same organization, next attempt.
        status_url = f"/api/admin/organizations/{request.organization_id}/bootstrap"
        retried = support.post(status_url)
        assert retried.status_code == 202 and retried.json()["organization_id"] == str(request.organization_id)
        _wait(lambda: Organization.objects.filter(pk=request.organization_id, bootstrap_attempt=2).exists())
        services.organization_bootstrap_cancel(organization_id=request.organization_id)
    entry = LogEntry.objects.get(object_id=str(request.organization_id))
    assert entry.get_change_message() == "Cancelled the bootstrap."


def test_cancel_and_recheck_of_a_bootstrap_that_is_not_running_say_so(
    support, settings, local_dns, temporal_worker, mail_pipeline
):
    def act(request, name):
        url = reverse(f"admin:organizations_organization_bootstrap_{name}", args=[request.organization_id])
        return support.post(url, follow=True)

    never_started = make_request()
    for name in ("cancel", "recheck_dns"):
        response = act(never_started, name)
        assert response.status_code == 200 and b"This bootstrap is not running." in response.content
    finished = make_request(name="Finished Clinic")
    with temporal_worker():
        services.organization_bootstrap_start(request=finished)
        _wait(lambda: Organization.objects.filter(pk=finished.organization_id, status="active").exists(), 60)
    for name in ("cancel", "recheck_dns"):
        response = act(finished, name)
        assert b"This bootstrap is not running (it is completed)." in response.content
    assert not LogEntry.objects.exists()  # nothing was done, so nothing is logged as done


def test_a_cancel_that_temporal_refuses_is_reported_not_a_server_error(support, temporal_env, monkeypatch, caplog):
    from temporalio.service import RPCError, RPCStatusCode

    def refuse(workflow_id):
        raise RPCError("namespace rate limit exceeded", RPCStatusCode.RESOURCE_EXHAUSTED, b"")

    request = make_request()
    services.organization_bootstrap_start(request=request)  # no worker: it stays running
    monkeypatch.setattr(services, "cancel_workflow", refuse)
    url = reverse("admin:organizations_organization_bootstrap_cancel", args=[request.organization_id])
    response = support.post(url, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Temporal refused the request; nothing was done. Try again later." in page
    assert "namespace rate limit exceeded" not in page
    assert "Temporal refused (RESOURCE_EXHAUSTED: namespace rate limit exceeded)" in caplog.text
    assert not LogEntry.objects.exists()
    workflow_id = bootstrap_workflow_id(str(request.organization_id))
    assert describe_workflow(workflow_id).status == WorkflowExecutionStatus.RUNNING
    temporal.run(lambda client: client.get_workflow_handle(workflow_id).terminate("test over"))


def test_a_bootstrap_terminated_in_temporal_is_retried_once_its_last_step_is_over(
    support, settings, local_dns, temporal_worker, mail_pipeline
):
    """Terminating a run (Temporal's UI, tctl) skips compensation: the organization stays pending, which retry
    used to refuse for good. Now the page says so and retry takes it over, once a step the run had under way
    can no longer write; the new run carries on from what is there."""
    from invitations.models import Invitation
    from onboarding import selectors
    from organizations.dns.models import LocalDnsRecord

    settings.BOOTSTRAP_DNS_PROPAGATION_WAIT = 120
    settings.BOOTSTRAP_ACTIVITY_TIMEOUT = 3
    request = make_request()
    status_url = reverse("admin:organizations_organization_bootstrap", args=[request.organization_id])
    retry_url = reverse("admin:organizations_organization_bootstrap_retry", args=[request.organization_id])
    workflow_id = bootstrap_workflow_id(str(request.organization_id))
    with temporal_worker():
        services.organization_bootstrap_start(request=request)
        _wait(lambda: Organization.objects.filter(pk=request.organization_id, dns_status="configured").exists())
        temporal.run(lambda client: client.get_workflow_handle(workflow_id).terminate(reason="stuck, says support"))
        closed = describe_workflow(workflow_id).close_time

        page = support.get(status_url).content.decode()
        assert "before it could compensate" in page and "Retry bootstrap" in page
        refused = support.post(retry_url, follow=True).content.decode()
        assert "A step it had under way may still finish until" in refused
        assert OnboardingRequest.objects.get(pk=request.pk).bootstrap_attempts == 1
        assert not LogEntry.objects.exists()

        settings.BOOTSTRAP_DNS_PROPAGATION_WAIT = 0
        time.sleep(max(0.0, (closed - timezone.now()).total_seconds() + settings.BOOTSTRAP_ACTIVITY_TIMEOUT))
        retried = support.post(retry_url, follow=True).content.decode()
        assert "A new bootstrap run of Lakeside Clinic started." in retried
        _wait(lambda: Organization.objects.filter(pk=request.organization_id, status="active").exists(), 60)
        assert not selectors.bootstrap_status(OnboardingRequest.objects.get(pk=request.pk)).can_retry

    org = Organization.objects.get(pk=request.organization_id)
    assert org.bootstrap_attempt == 2 and org.dns_status == "verified"
    assert [e.event_type for e in selectors.bootstrap_status(request).timeline if e.stream_type == "organization"] == [
        "organization.created",
        "organization.dns_configured",
        "organization.bootstrap_restarted",
        "organization.dns_configured",
        "organization.dns_verified",
        "organization.invitations_sent",
        "organization.activated",
    ]
    # What the first run did is picked up, not done twice: one record, one invitation.
    assert LocalDnsRecord.objects.filter(name=org.domain).count() == 1
    assert Invitation.objects.filter(organization_id=org.pk).count() == 1
    assert LogEntry.objects.get(object_id=str(org.pk)).get_change_message() == "Retried the bootstrap."


def test_a_bootstrap_temporal_no_longer_knows_is_shown_as_such_not_as_starting(support, temporal_env):
    from onboarding import selectors

    request = make_request()
    OnboardingRequest.objects.filter(pk=request.pk).update(bootstrap_started_at=timezone.now(), bootstrap_attempts=1)
    assert selectors.bootstrap_status(OnboardingRequest.objects.get(pk=request.pk)).workflow_status == "STARTING"
    long_ago = timezone.now() - selectors.STARTING_GRACE - timezone.timedelta(minutes=1)
    OnboardingRequest.objects.filter(pk=request.pk).update(bootstrap_started_at=long_ago)
    status_url = reverse("admin:organizations_organization_bootstrap", args=[request.organization_id])
    page = support.get(status_url).content.decode()
    assert '<span class="workflow-status">not_kept</span>' in page
    assert "retention period" in page
    # Whatever became of that run, none can write any more: it can be started again.
    assert "Retry bootstrap" in page
    started = services.organization_bootstrap_retry(organization_id=request.organization_id)
    workflow_id = bootstrap_workflow_id(str(request.organization_id))
    assert started.attempt == 2 and describe_workflow(workflow_id).status == WorkflowExecutionStatus.RUNNING
    temporal.run(lambda client: client.get_workflow_handle(workflow_id).terminate("test over"))


def test_a_started_request_cannot_be_deleted_one_by_one_or_in_bulk(temporal_env, client):
    client.force_login(User.objects.create_superuser("root", "root@example.test", "pw-" + uuid.uuid4().hex))
    started, fresh = make_request(name="Started Clinic"), make_request(name="Fresh Clinic")
    OnboardingRequest.objects.filter(pk=started.pk).update(bootstrap_started_at=timezone.now(), bootstrap_attempts=1)
    delete = reverse("admin:onboarding_onboardingrequest_delete", args=[started.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [started.pk, fresh.pk], "post": "yes"}
    assert client.post(changelist(), bulk).status_code == 403
    assert OnboardingRequest.objects.count() == 2
    fresh_delete = reverse("admin:onboarding_onboardingrequest_delete", args=[fresh.pk])
    assert client.post(fresh_delete, {"post": "yes"}).status_code == 302
    assert list(OnboardingRequest.objects.values_list("name", flat=True)) == ["Started Clinic"]


def _wait(predicate, timeout: float = 30):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_the_organization_page_lists_its_members_and_invitations(client, local_dns, temporal_worker, mail_pipeline):
    from django.contrib.auth.models import User as Account

    from invitations.models import Invitation

    admin_user = Account.objects.create_superuser("root", "root@example.test", "pw-" + uuid.uuid4().hex)
    client.force_login(admin_user)
    request = services.onboarding_request_create(
        **payload(
            invitees=[
                {"email": "first@example.test", "role": "organization_admin"},
                {"email": "second@example.test", "role": "clinician"},
            ]
        )
    )
    with temporal_worker():
        services.organization_bootstrap_start(request=request)
        _wait(lambda: Organization.objects.filter(pk=request.organization_id, status="active").exists(), 60)
    member = Account.objects.create_user("first", "first@example.test", "pw-" + uuid.uuid4().hex)
    from invitations import acceptance

    invitation = Invitation.objects.get(email="first@example.test")
    acceptance.invitation_accept(selector=invitation.tokens.latest("issued_at").selector, user=member)

    page = client.get(reverse("admin:organizations_organization_change", args=[request.organization_id]))
    assert page.status_code == 200
    html = page.content.decode()
    cells = re.findall(r'<td class="field-member">(.*?)</td>', html, re.S)
    members = [unescape(re.sub(r"<[^>]+>", "", cell).strip()) for cell in cells]
    assert members == ["first <first@example.test>"], "the membership inline lists the account that accepted"
    assert "second@example.test" in html and "Pending" in html
