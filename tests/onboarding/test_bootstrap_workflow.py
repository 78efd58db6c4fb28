"""The bootstrap workflow against the real Temporal dev server, PostgreSQL and real DNS servers.

Long because each scenario of the bootstrap runs end to end on real parts, with its recorded history.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from eventstore.models import Event
from eventstore.services import APPEND_LOCK_KEY
from invitations.models import Invitation, InvitationDelivery, InvitationStatus
from invitations.payloads import bootstrap_delivery_workflow_id
from onboarding import services
from onboarding.models import OnboardingRequest
from onboarding.payloads import STATE_QUERY, BootstrapResult, BootstrapState, bootstrap_workflow_id
from organizations import services as organization_services
from organizations.dns.models import LocalDnsRecord
from organizations.models import DnsStatus, Organization, OrganizationStatus
from temporal_bridge.client import describe_workflow, query_workflow, temporal
from tests.invitations.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]

HAPPY_EVENTS = [
    "organization.created",
    "organization.dns_configured",
    "organization.dns_verified",
    "organization.invitations_sent",
    "organization.activated",
]


def start_bootstrap(subdomain: str | None = None, **overrides) -> OnboardingRequest:
    fields = {
        "name": "Sunrise Pediatrics",
        "type": "provider",
        "subdomain": subdomain or f"sun-{uuid.uuid4().hex[:8]}",
        "invitees": [{"email": "Ada.Admin@Example.test", "first_name": "Ada", "role": "organization_admin"}],
        **overrides,
    }
    request = services.onboarding_request_create(**fields)
    services.organization_bootstrap_start(request=request)
    return request


def outcome(organization_id, timeout: float = 90) -> BootstrapResult:
    async def wait(client):
        handle = client.get_workflow_handle(bootstrap_workflow_id(str(organization_id)), result_type=BootstrapResult)
        return await handle.result()

    return temporal.run(wait, timeout=timeout)


def failure_of(organization_id) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as excinfo:
        outcome(organization_id)
    cause = excinfo.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


def state_of(organization_id) -> BootstrapState:
    return query_workflow(bootstrap_workflow_id(str(organization_id)), STATE_QUERY, result_type=BootstrapState)


def org_events(organization_id) -> list[str]:
    return list(
        Event.objects.filter(stream_type="organization", stream_id=str(organization_id))
        .order_by("stream_version")
        .values_list("event_type", flat=True)
    )


def history_types(organization_id) -> list[int]:
    async def fetch(client):
        return await client.get_workflow_handle(bootstrap_workflow_id(str(organization_id))).fetch_history()

    return [event.event_type for event in temporal.run(fetch).events]


def wait_for(predicate, timeout: float = 30, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message}")


def test_a_bootstrap_creates_configures_verifies_invites_and_activates(
    local_dns, temporal_worker, mail_pipeline, keep_history
):
    with temporal_worker():
        request = start_bootstrap()
        result = outcome(request.organization_id)
        state = state_of(request.organization_id)
        history = keep_history(request.organization_id, "happy_path")

    org = Organization.objects.get(pk=request.organization_id)
    assert org.status == OrganizationStatus.ACTIVE
    assert org.dns_status == DnsStatus.VERIFIED and org.dns_provider == "local"
    assert org.activated_at is not None and org.activated_at >= org.created_at
    assert result.domain == f"{request.subdomain}.{settings.DNS_BASE_DOMAIN}" == org.domain
    assert result.invitations.total == 1 and result.invitations.sent == 1 and result.invitations.failed == 0
    assert org_events(request.organization_id) == HAPPY_EVENTS
    assert not [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
    # The email's report went to the fan-out, the bootstrap's child workflow, which counted it.
    fan_out = bootstrap_delivery_workflow_id(str(request.organization_id), 1)
    child = temporal.run(lambda client: client.get_workflow_handle(fan_out).fetch_history())
    (report,) = [
        json.loads(event.workflow_execution_signaled_event_attributes.input.payloads[0].data)
        for event in child.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert report["status"] == "sent" and report["invitation_id"] == str(Invitation.objects.get().pk)
    record = LocalDnsRecord.objects.get(name=org.domain)
    assert record.record_type == "CNAME" and record.content == settings.DNS_TARGET
    assert state.status == "active"
    assert [(s.name, s.status) for s in state.steps] == [(s.name, "done") for s in state.steps]
    assert state.dns.verified_by == settings.DNS_VERIFY_RESOLVERS
    # Every event of the bootstrap carries its workflow and step, and the organization id as correlation id.
    for event in Event.objects.filter(stream_id=str(request.organization_id)):
        assert event.workflow_id == bootstrap_workflow_id(str(request.organization_id))
        assert event.correlation_id == str(request.organization_id)
        assert event.metadata["step"]


def test_dns_configuration_failing_for_good_is_compensated(settings, temporal_worker, cloudflare, keep_history):
    for _ in range(settings.BOOTSTRAP_DNS_CONFIGURE_MAX_ATTEMPTS):
        cloudflare.fail_next(503, 10000, "Service temporarily unavailable", method="POST")
    with temporal_worker():
        request = start_bootstrap()
        cause = failure_of(request.organization_id)
        state = state_of(request.organization_id)
        keep_history(request.organization_id, "dns_configuration_failed")

    assert cause.type == "BootstrapFailed" and "configure_dns" in cause.message
    configure = next(s for s in state.steps if s.name == "configure_dns")
    assert configure.status == "failed" and configure.attempts == settings.BOOTSTRAP_DNS_CONFIGURE_MAX_ATTEMPTS
    assert len(cloudflare.requests_for("POST")) == settings.BOOTSTRAP_DNS_CONFIGURE_MAX_ATTEMPTS
    assert [(c.name, c.status) for c in state.compensation] == [("remove_dns", "done"), ("mark_failed", "done")]
    org = Organization.objects.get(pk=request.organization_id)
    assert org.status == OrganizationStatus.FAILED and org.failed_step == "configure_dns"
    assert "unavailable" in org.failure_message.lower()
    assert org_events(request.organization_id) == ["organization.created", "organization.bootstrap_failed"]
    assert not cloudflare.records


def test_a_compensation_step_outlasts_a_database_outage(settings, monkeypatch, temporal_worker, cloudflare):
    """Giving up on marking the organization failed would leave it pending, holding its subdomain."""
    from django.db import OperationalError

    for _ in range(settings.BOOTSTRAP_DNS_CONFIGURE_MAX_ATTEMPTS):
        cloudflare.fail_next(503, 10000, "Service temporarily unavailable", method="POST")
    mark_failed, calls = organization_services.organization_mark_failed, []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) <= settings.BOOTSTRAP_ACTIVITY_MAX_ATTEMPTS:  # more failures than a step may have
            raise OperationalError("the database is failing over")
        return mark_failed(**kwargs)

    monkeypatch.setattr(organization_services, "organization_mark_failed", flaky)
    with temporal_worker():
        request = start_bootstrap()
        failure_of(request.organization_id)
        state = state_of(request.organization_id)

    assert len(calls) == settings.BOOTSTRAP_ACTIVITY_MAX_ATTEMPTS + 1
    assert [(c.name, c.status) for c in state.compensation] == [("remove_dns", "done"), ("mark_failed", "done")]
    assert Organization.objects.get(pk=request.organization_id).status == OrganizationStatus.FAILED


def test_a_rate_limited_dns_configuration_waits_as_long_as_cloudflare_asks(
    settings, temporal_worker, cloudflare, mail_pipeline
):
    settings.DNS_VERIFY_RESOLVERS, settings.DNS_VERIFY_QUORUM = ["127.0.0.1:9"], 1
    cloudflare.fail_next(429, 10000, "Rate limited", headers={"Retry-After": "3"}, method="POST")
    with temporal_worker():
        request = start_bootstrap()
        wait_for(lambda: len(cloudflare.requests_for("POST")) == 2, message="the second create")
        history = temporal.run(
            lambda client: client.get_workflow_handle(
                bootstrap_workflow_id(str(request.organization_id))
            ).fetch_history()
        )
        services.organization_bootstrap_cancel(organization_id=request.organization_id)
        failure_of(request.organization_id)
    timers = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for e in history.events
        if e.HasField("timer_started_event_attributes")
    ]
    # The workflow's own backoff would be 0.2 s; the provider asked for 3 s.
    assert timers[0] == timedelta(seconds=3)
    # The second attempt made the record; cancelling the bootstrap removed it again.
    assert len(cloudflare.requests_for("DELETE")) == 1 and not cloudflare.records


def test_dns_that_never_reaches_quorum_is_compensated(settings, local_dns, temporal_worker, keep_history):
    # Two of three resolvers never answer: quorum 2 is out of reach.
    silent = [f"127.0.0.1:{port}" for port in _silent_udp_ports(2)]
    settings.DNS_VERIFY_RESOLVERS = [*settings.DNS_VERIFY_RESOLVERS, *silent]
    settings.DNS_VERIFY_QUORUM = 2
    settings.DNS_VERIFY_TIMEOUT = 0.5
    with temporal_worker():
        request = start_bootstrap()
        cause = failure_of(request.organization_id)
        state = state_of(request.organization_id)
        keep_history(request.organization_id, "dns_quorum_not_reached")

    assert "verify_dns" in cause.message and "quorum" in cause.message
    verify = next(s for s in state.steps if s.name == "verify_dns")
    assert verify.status == "failed" and verify.attempts >= 2
    assert "1 of 3 resolvers agree" in verify.error
    org = Organization.objects.get(pk=request.organization_id)
    assert org.status == OrganizationStatus.FAILED and org.failed_step == "verify_dns"
    assert org.dns_status == DnsStatus.REMOVED
    assert not LocalDnsRecord.objects.filter(name=org.domain).exists(), "compensation removes the record"
    assert org_events(request.organization_id) == [
        "organization.created",
        "organization.dns_configured",
        "organization.dns_removed",
        "organization.bootstrap_failed",
    ]
    # The subdomain is free again.
    assert not Organization.objects.filter(subdomain=request.subdomain).exclude(status="failed").exists()


def test_cancelling_a_running_bootstrap_compensates(settings, local_dns, temporal_worker, keep_history):
    settings.BOOTSTRAP_DNS_PROPAGATION_WAIT = 120
    with temporal_worker():
        request = start_bootstrap()
        wait_for(lambda: state_of(request.organization_id).current_step == "wait_for_dns_propagation", message="wait")
        services.organization_bootstrap_cancel(organization_id=request.organization_id)
        cause = failure_of(request.organization_id)
        state = state_of(request.organization_id)
        keep_history(request.organization_id, "cancelled")

    assert cause.type == "BootstrapCancelled"
    assert (
        describe_workflow(bootstrap_workflow_id(str(request.organization_id))).status == WorkflowExecutionStatus.FAILED
    )
    assert next(s for s in state.steps if s.name == "wait_for_dns_propagation").status == "failed"
    assert next(s for s in state.steps if s.name == "configure_dns").status == "compensated"
    org = Organization.objects.get(pk=request.organization_id)
    assert org.status == OrganizationStatus.FAILED and org.failed_step == "wait_for_dns_propagation"
    assert org.failure_message == "Cancelled by support."
    assert not LocalDnsRecord.objects.filter(name=org.domain).exists()


def test_a_cancel_during_a_step_waits_for_its_activity_before_compensating(
    settings, local_dns, temporal_worker, keep_history
):
    """The create step is held up (another append holds the store's lock) when support cancels. Compensation
    must not run until the create has finished, or it finds no organization to mark failed and the one created
    a moment later stays pending, holding its subdomain."""
    from django.db import connection

    db = connection.settings_dict
    holder = psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"])
    holder.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_KEY])

    def create_waits_for_the_lock() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            return cursor.fetchone()[0] > 0

    try:
        with temporal_worker():
            request = start_bootstrap()
            wait_for(create_waits_for_the_lock, message="the create step waiting for the append lock")
            services.organization_bootstrap_cancel(organization_id=request.organization_id)

            def cancel_reached_the_workflow() -> bool:
                # A workflow task completed after the request: the workflow has handled it, create still held up.
                types = history_types(request.organization_id)
                requested = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED
                return (
                    requested in types
                    and EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED in types[types.index(requested) :]
                )

            wait_for(cancel_reached_the_workflow, timeout=60, message="the workflow to handle the cancel")
            assert create_waits_for_the_lock(), "the create step is still held up"
            holder.rollback()
            cause = failure_of(request.organization_id)
            state = state_of(request.organization_id)
            keep_history(request.organization_id, "cancelled_during_a_step")
    finally:
        holder.close()

    assert cause.type == "BootstrapCancelled"
    assert [(c.name, c.status) for c in state.compensation] == [("mark_failed", "done")]
    org = Organization.objects.get(pk=request.organization_id)
    assert org.status == OrganizationStatus.FAILED and org.failed_step == "create_organization"
    assert org_events(request.organization_id) == ["organization.created", "organization.bootstrap_failed"]


def activity_kinds(organization_id) -> dict[str, str]:
    """Each activity type in the run's history and its fan-out's: "regular" (scheduled as a task) or "local" (a
    marker)."""
    organization_id = str(organization_id)
    workflow_ids = [bootstrap_workflow_id(organization_id), bootstrap_delivery_workflow_id(organization_id, 1)]
    events = [
        event
        for workflow_id in workflow_ids
        for event in temporal.run(lambda client, w=workflow_id: client.get_workflow_handle(w).fetch_history()).events
    ]
    kinds = {}
    for event in events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            kinds[event.activity_task_scheduled_event_attributes.activity_type.name] = "regular"
        elif event.marker_recorded_event_attributes.marker_name == "core_local_activity":
            data = json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)
            kinds[data["activity_type"]] = "local"
    return kinds


@pytest.mark.slow
def test_a_big_invitee_list_is_invited_and_revoked_in_regular_activities(
    settings, local_dns, temporal_worker, mail_pipeline, keep_history
):
    """Generating, enqueueing and revoking work per invitee: above 20 invitees they are regular activities,
    which a long list cannot outlast (a local activity that outlives its workflow task starts over)."""
    mail_pipeline.fail_next = 10_000  # every email meets 451 and waits for a retry: the bootstrap stays waiting
    invitees = [{"email": f"member{i:02d}@example.test", "role": "staff"} for i in range(24)]
    invitees.append({"email": "boss@example.test", "role": "organization_admin"})
    with temporal_worker():
        request = start_bootstrap(invitees=invitees)
        wait_for(
            lambda: state_of(request.organization_id).current_step == "send_invitation_emails"
            and InvitationDelivery.objects.filter(invitation__organization_id=request.organization_id).count() == 25,
            timeout=60,
            message="the email wait",
        )
        services.organization_bootstrap_cancel(organization_id=request.organization_id)
        assert failure_of(request.organization_id).type == "BootstrapCancelled"
        kinds = activity_kinds(request.organization_id)
        keep_history(request.organization_id, "big_invitee_list_cancelled")

    invitations = Invitation.objects.filter(organization_id=request.organization_id)
    assert invitations.count() == 25
    assert set(invitations.values_list("status", flat=True)) == {InvitationStatus.REVOKED}
    per_invitee = ("invitations.generate", "invitations.enqueue_emails", "invitations.revoke_pending")
    assert {name: kinds[name] for name in per_invitee} == dict.fromkeys(per_invitee, "regular")
    assert kinds["organizations.create"] == "local"  # the short steps stay local


def test_support_can_ask_for_an_immediate_dns_check(settings, local_dns, temporal_worker, mail_pipeline, keep_history):
    settings.BOOTSTRAP_DNS_PROPAGATION_WAIT = 600
    with temporal_worker():
        request = start_bootstrap()
        wait_for(lambda: state_of(request.organization_id).current_step == "wait_for_dns_propagation", message="wait")
        services.organization_dns_recheck(organization_id=request.organization_id)
        result = outcome(request.organization_id, timeout=60)
        keep_history(request.organization_id, "dns_recheck_signal")
    assert result.organization_id == str(request.organization_id)
    assert Organization.objects.get(pk=request.organization_id).status == OrganizationStatus.ACTIVE


def test_a_failed_bootstrap_can_be_retried_as_a_new_run(
    settings, local_dns, temporal_worker, mail_pipeline, keep_history
):
    good_resolvers = list(settings.DNS_VERIFY_RESOLVERS)
    settings.DNS_VERIFY_RESOLVERS = [f"127.0.0.1:{port}" for port in _silent_udp_ports(1)]
    settings.DNS_VERIFY_TIMEOUT = 0.3
    with temporal_worker():
        request = start_bootstrap()
        failure_of(request.organization_id)
        first_run = describe_workflow(bootstrap_workflow_id(str(request.organization_id))).run_id
        settings.DNS_VERIFY_RESOLVERS = good_resolvers
        started = services.organization_bootstrap_retry(organization_id=request.organization_id)
        result = outcome(request.organization_id)
        second_run = describe_workflow(bootstrap_workflow_id(str(request.organization_id))).run_id
        keep_history(request.organization_id, "retried_run", attempt=2)

    assert started.attempt == 2 and second_run != first_run
    assert result.organization_id == str(request.organization_id)
    org = Organization.objects.get(pk=request.organization_id)
    assert org.status == OrganizationStatus.ACTIVE and org.bootstrap_attempt == 2
    assert org_events(request.organization_id)[:5] == [
        "organization.created",
        "organization.dns_configured",
        "organization.dns_removed",
        "organization.bootstrap_failed",
        "organization.bootstrap_restarted",
    ]
    # Each attempt has a fan-out of its own: a late email of an earlier attempt reports to that one, never to this.
    (delivery,) = InvitationDelivery.objects.filter(invitation__organization_id=request.organization_id)
    assert delivery.notify_workflow_id == bootstrap_delivery_workflow_id(str(request.organization_id), 2)


def test_two_bootstraps_racing_for_one_subdomain_leave_one_winner(
    settings, local_dns, temporal_env, temporal_worker, mail_pipeline
):
    settings.BOOTSTRAP_DNS_PROPAGATION_WAIT = 120
    subdomain = f"race-{uuid.uuid4().hex[:8]}"
    invitees = [{"email": "ray@example.test", "role": "organization_admin"}]
    # Both pass validation and both start before any worker runs: nothing holds the subdomain yet.
    first = services.onboarding_request_create(name="First", type="provider", subdomain=subdomain, invitees=invitees)
    second = services.onboarding_request_create(name="Second", type="partner", subdomain=subdomain, invitees=invitees)
    services.organization_bootstrap_start(request=first)
    services.organization_bootstrap_start(request=second)
    with temporal_worker():
        ended = wait_for(
            lambda: [r for r in (first, second) if _status(r) == WorkflowExecutionStatus.FAILED], message="a loser"
        )
        (loser,) = ended
        winner = second if loser is first else first
        # Whether the pre-check or the database's unique index stopped it depends on timing; both say so.
        assert f"“{subdomain}” is already used by an organization" in failure_of(loser.organization_id).message
        assert not Organization.objects.filter(pk=loser.organization_id).exists()
        assert Organization.objects.get(subdomain=subdomain).pk == winner.organization_id

        # Once the winner is cancelled the subdomain is free, and the loser's bootstrap can be retried.
        services.organization_bootstrap_cancel(organization_id=winner.organization_id)
        failure_of(winner.organization_id)
        settings.BOOTSTRAP_DNS_PROPAGATION_WAIT = 0
        started = services.organization_bootstrap_retry(organization_id=loser.organization_id)
        outcome(loser.organization_id)
    assert started.attempt == 2
    assert Organization.objects.get(pk=loser.organization_id).status == OrganizationStatus.ACTIVE


def _status(request) -> WorkflowExecutionStatus:
    return describe_workflow(bootstrap_workflow_id(str(request.organization_id))).status


def test_an_organization_is_never_bootstrapped_twice(local_dns, temporal_env):
    request = start_bootstrap()
    with pytest.raises(services.BootstrapConflict, match="already started"):
        services.organization_bootstrap_start(request=request)
    with pytest.raises(services.BootstrapConflict, match="Only a failed bootstrap can be retried"):
        services.organization_bootstrap_retry(organization_id=request.organization_id)
    assert (
        describe_workflow(bootstrap_workflow_id(str(request.organization_id))).status == WorkflowExecutionStatus.RUNNING
    )


def test_the_worker_killed_during_the_propagation_wait_resumes_with_each_event_once(
    settings, local_dns, temporal_env, mail_pipeline, tmp_path
):
    settings.BOOTSTRAP_DNS_PROPAGATION_WAIT = 4
    request = start_bootstrap()
    log = tmp_path / "worker.log"
    worker = _worker_process(settings, log)
    try:
        # Parked on the wait: the timer is in the history. (The DNS event alone comes earlier, while the workflow
        # task that starts the timer may still be running: killed then, there would be no timer to fire.)
        wait_for(
            lambda: EventType.EVENT_TYPE_TIMER_STARTED in history_types(request.organization_id),
            timeout=120,
            message=f"the propagation wait to start; worker output:\n{_tail(log)}",
        )
        assert "organization.dns_configured" in org_events(request.organization_id)
        worker.send_signal(signal.SIGKILL)  # no drain, no goodbye: a crash
        worker.wait(timeout=30)
        wait_for(  # the timer fires while no worker runs
            lambda: EventType.EVENT_TYPE_TIMER_FIRED in history_types(request.organization_id),
            timeout=60,
            message="the propagation timer to fire",
        )
        worker = _worker_process(settings, log)
        result = outcome(request.organization_id, timeout=120)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert result.organization_id == str(request.organization_id)
    events = org_events(request.organization_id)
    assert events == HAPPY_EVENTS
    assert all(count == 1 for count in Counter(events).values())


def test_the_worker_serves_bootstrap_metrics(settings, local_dns, temporal_env, mail_pipeline, tmp_path):
    """The deployed worker with TEMPORAL_METRICS_ADDRESS: the SDK's workflow metrics and the bootstrap's own
    (outcome and failed step, emails, DNS verification), for one bootstrap that completes and one cancelled."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from tests.support.net import free_port

    address = f"127.0.0.1:{free_port()}"
    log = tmp_path / "worker.log"
    worker = _worker_process(settings, log, TEMPORAL_METRICS_ADDRESS=address)
    try:
        completed = start_bootstrap()
        outcome(completed.organization_id)
        settings.BOOTSTRAP_DNS_PROPAGATION_WAIT = 600
        cancelled = start_bootstrap()
        wait_for(
            lambda: EventType.EVENT_TYPE_TIMER_STARTED in history_types(cancelled.organization_id),
            timeout=60,
            message=f"the propagation wait to start; worker output:\n{_tail(log)}",
        )
        services.organization_bootstrap_cancel(organization_id=cancelled.organization_id)
        failure_of(cancelled.organization_id)

        def scrape() -> dict:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:  # noqa: S310  loopback
                text = response.read().decode()
            return {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }

        def value(samples: dict, name: str, **labels: str) -> float:
            return sum(v for (n, have), v in samples.items() if n == name and set(labels.items()) <= have)

        bootstrap = {"workflow_type": "OrganizationBootstrapWorkflow"}
        samples = scrape()
        # Workflow metrics are flushed on the worker's own schedule: wait for the cancelled run's to arrive.
        deadline = time.monotonic() + 30
        while value(samples, "temporal_workflow_failed_total", **bootstrap) < 1 and time.monotonic() < deadline:
            time.sleep(0.5)
            samples = scrape()
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    assert value(samples, "temporal_workflow_completed_total", **bootstrap) == 1
    assert value(samples, "temporal_workflow_failed_total", **bootstrap) == 1
    assert value(samples, "a4c_bootstraps_total", outcome="completed", failed_step="") == 1
    assert value(samples, "a4c_bootstraps_total", outcome="cancelled", failed_step="wait_for_dns_propagation") == 1
    assert value(samples, "a4c_bootstraps_total", outcome="failed") == 0
    assert value(samples, "a4c_invitation_emails_total", result="sent") == 1
    assert value(samples, "a4c_invitation_emails_total", result="failed") == 0
    assert value(samples, "a4c_dns_verification_seconds_count") == 1
    assert value(samples, "a4c_dns_verification_checks_count") == 1
    # Every metric the alerting rules read is one that this worker or the web side's /metrics exposes.
    from tests.support.alerts import alert_metric_names, web_metric_names

    assert alert_metric_names() - {name for name, _ in samples} - web_metric_names() == set()


def test_the_worker_refuses_a_metrics_address_it_cannot_serve(settings):
    from django.core.management import CommandError, call_command

    settings.TEMPORAL_METRICS_ADDRESS = "metrics.example:port"
    with pytest.raises(CommandError, match="Cannot serve metrics on metrics.example:port: Invalid Prometheus address"):
        call_command("run_temporal_worker")


@pytest.mark.django_db(transaction=True)
def test_a_bootstrap_with_powerdns_resolves_over_real_dns(settings, powerdns, temporal_worker, mail_pipeline):
    settings.DNS_PROVIDER = "powerdns"
    settings.POWERDNS_API_URL, settings.POWERDNS_API_KEY = powerdns.api_url, powerdns.api_key
    settings.POWERDNS_SERVER_ID, settings.POWERDNS_ZONE = powerdns.server_id, settings.DNS_BASE_DOMAIN
    settings.DNS_VERIFY_RESOLVERS, settings.DNS_VERIFY_QUORUM = powerdns.resolvers, 1
    powerdns.create_zone(settings.DNS_BASE_DOMAIN)
    with temporal_worker():
        request = start_bootstrap()
        outcome(request.organization_id)
    org = Organization.objects.get(pk=request.organization_id)
    assert org.status == OrganizationStatus.ACTIVE and org.dns_provider == "powerdns"
    (rrset,) = powerdns.rrsets(settings.DNS_BASE_DOMAIN, org.domain)
    assert rrset["type"] == "CNAME" and rrset["records"][0]["content"] == settings.DNS_TARGET + "."


# --- helpers ------------------------------------------------------------------------------------------------


def _silent_udp_ports(count: int) -> list[int]:
    """Loopback UDP ports that accept queries and never answer (kept open for the test session)."""
    import socket

    ports = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        _SILENT.append(sock)
        ports.append(sock.getsockname()[1])
    return ports


_SILENT: list = []


def _tail(path: Path) -> str:
    return path.read_text()[-3000:] if path.exists() else "(no output)"


def _worker_process(settings, log: Path, **extra_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{settings.DATABASES['default']['NAME']}",
        "TEMPORAL_ADDRESS": settings.TEMPORAL_ADDRESS,
        "TEMPORAL_TASK_QUEUE_PREFIX": settings.TEMPORAL_TASK_QUEUE_PREFIX,
        "DNS_VERIFY_RESOLVERS": ",".join(settings.DNS_VERIFY_RESOLVERS),
        "DNS_VERIFY_QUORUM": str(settings.DNS_VERIFY_QUORUM),
        **_mail_env(settings),
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_temporal_worker", "--shutdown-timeout", "5"],
        cwd=ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )


def _mail_env(settings) -> dict[str, str]:
    """Let a worker in another process enqueue emails where this test's Celery worker listens."""
    from a4c.celery import app

    return {"CELERY_BROKER_URL": app.conf.broker_url, "CELERY_TASK_DEFAULT_QUEUE": app.conf.task_default_queue}


def test_a_compensation_step_that_keeps_failing_does_not_hold_back_the_others(
    settings, monkeypatch, temporal_worker, cloudflare
):
    """A DNS provider down for good: its removal is given up after BOOTSTRAP_COMPENSATION_STEP_TIMEOUT and
    recorded as failed, and the organization is still marked failed."""
    from organizations.dns.base import DnsTransientError

    settings.BOOTSTRAP_COMPENSATION_STEP_TIMEOUT = 2.0
    for _ in range(settings.BOOTSTRAP_DNS_CONFIGURE_MAX_ATTEMPTS):
        cloudflare.fail_next(503, 10000, "Service temporarily unavailable", method="POST")
    removals = []

    def provider_down(**kwargs):
        removals.append(1)
        raise DnsTransientError("Cloudflare answered 503 Service temporarily unavailable")

    monkeypatch.setattr(organization_services, "organization_dns_remove", provider_down)
    with temporal_worker():
        request = start_bootstrap()
        failure_of(request.organization_id)
        state = state_of(request.organization_id)

    assert len(removals) > 1, "retried before it was given up"
    assert [(c.name, c.status) for c in state.compensation] == [("remove_dns", "failed"), ("mark_failed", "done")]
    org = Organization.objects.get(pk=request.organization_id)
    assert org.status == OrganizationStatus.FAILED and org.failed_step == "configure_dns"


@pytest.mark.slow
def test_a_cancel_during_compensation_does_not_cut_it_short(
    settings, monkeypatch, temporal_worker, cloudflare, keep_history
):
    """While a failed bootstrap compensates it is still running, so the admin offers Cancel. A cancel then must not
    interrupt the DNS removal under way (leaving the record behind) or end the run before the organization is
    marked failed (leaving it pending, its subdomain taken, and neither retry nor cancel possible)."""
    import threading

    from organizations.dns.base import DnsTransientError

    settings.BOOTSTRAP_COMPENSATION_STEP_TIMEOUT = 600.0
    for _ in range(settings.BOOTSTRAP_DNS_CONFIGURE_MAX_ATTEMPTS):
        cloudflare.fail_next(503, 10000, "Service temporarily unavailable", method="POST")
    remove, provider_back, removals = organization_services.organization_dns_remove, threading.Event(), []

    def provider_down_until_back(**kwargs):
        removals.append(1)
        if not provider_back.is_set():
            raise DnsTransientError("Cloudflare answered 503 Service temporarily unavailable")
        return remove(**kwargs)

    monkeypatch.setattr(organization_services, "organization_dns_remove", provider_down_until_back)
    with temporal_worker():
        request = start_bootstrap()
        wait_for(lambda: len(removals) >= 2, timeout=60, message="the DNS removal failing and being retried")
        assert state_of(request.organization_id).status == "compensating"
        services.organization_bootstrap_cancel(organization_id=request.organization_id)

        def cancel_reached_the_workflow() -> bool:
            types = history_types(request.organization_id)
            requested = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED
            return (
                requested in types and EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED in types[types.index(requested) :]
            )

        wait_for(cancel_reached_the_workflow, timeout=60, message="the workflow to handle the cancel")
        provider_back.set()
        cause = failure_of(request.organization_id)
        state = state_of(request.organization_id)
        keep_history(request.organization_id, "cancel_during_compensation")

    assert cause.type == "BootstrapFailed"
    assert [(c.name, c.status) for c in state.compensation] == [("remove_dns", "done"), ("mark_failed", "done")]
    org = Organization.objects.get(pk=request.organization_id)
    assert org.status == OrganizationStatus.FAILED and org.failed_step == "configure_dns"


def test_a_bug_in_workflow_code_is_retried_by_temporal_not_compensated(local_dns, temporal_worker):
    """A TypeError from a bad deploy is no reason to tear the organization down: its workflow task fails and
    is retried (until a fixed worker picks it up), and nothing is compensated."""
    from temporal_bridge.registry import register, task_queue

    from .buggy_workflow import BUGGY_WORKFLOW, BootstrapWithABug

    register("bootstrap", workflows=[BootstrapWithABug])
    request = services.onboarding_request_create(
        name="Bug Clinic",
        type="provider",
        subdomain=f"bug-{uuid.uuid4().hex[:8]}",
        invitees=[{"email": "lead@example.test", "role": "organization_admin"}],
    )
    params = services._bootstrap_input(request, list(request.invitees.values("email", "role")), attempt=1)
    workflow_id = f"bug-{request.organization_id}"

    def task_failures() -> int:
        raw = describe_workflow(workflow_id).raw_description
        return raw.pending_workflow_task.attempt if raw.HasField("pending_workflow_task") else 0

    with temporal_worker():
        temporal.run(
            lambda client: client.start_workflow(
                BUGGY_WORKFLOW, params, id=workflow_id, task_queue=task_queue("bootstrap")
            )
        )
        wait_until(lambda: task_failures() >= 2, timeout=60)
        assert describe_workflow(workflow_id).status == WorkflowExecutionStatus.RUNNING
        temporal.run(lambda client: client.get_workflow_handle(workflow_id).terminate("test over"))
    assert org_events(request.organization_id) == ["organization.created", "organization.dns_configured"]
    assert Organization.objects.get(pk=request.organization_id).status == OrganizationStatus.PENDING
