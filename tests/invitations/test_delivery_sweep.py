"""Deliveries whose Celery task never reached the broker (the publish after commit failed) or whose sender died
past its lease are published again by a scheduled sweep, so no invitation email is stranded for good."""

import datetime

import pytest
from django.utils import timezone
from temporalio.service import RPCError

from eventstore.events import EventMetadata
from invitations import deliveries, services
from invitations.models import DeliveryStatus, InvitationDelivery
from invitations.payloads import DELIVERY_SWEEP_SCHEDULE_ID, Invitee
from temporal_bridge.client import temporal
from temporal_bridge.registry import task_queue

from .helpers import open_link, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def invite(organization, email: str) -> str:
    (invitation_id,) = services.invitations_generate(
        organization_id=organization,
        invitees=[Invitee(email=email)],
        key_prefix=f"sweep/{email}",
        metadata=EventMetadata(),
    )
    return invitation_id


def delivery(invitation_id: str, *, status=DeliveryStatus.QUEUED, age_minutes: float, lease_minutes=None, **extra):
    at = timezone.now() - datetime.timedelta(minutes=age_minutes)
    claimed = at + datetime.timedelta(minutes=lease_minutes) if lease_minutes is not None else None
    return InvitationDelivery.objects.create(
        id=deliveries.delivery_id_for(f"sweep/{invitation_id}/{status}/{age_minutes}/{lease_minutes}/{extra}"),
        **extra,
        invitation_id=invitation_id,
        kind="invitation",
        status=status,
        claimed_until=claimed,
        queued_at=at,
        updated_at=at,
    )


def test_the_sweep_publishes_stranded_deliveries_once(organization, monkeypatch):
    invitation_id = invite(organization, "stranded@example.org")
    stranded = delivery(invitation_id, age_minutes=30)
    abandoned = delivery(invitation_id, status=DeliveryStatus.SENDING, age_minutes=30, lease_minutes=2)
    delivery(invitation_id, age_minutes=1)  # still young: its task may simply be in the queue
    delivery(invitation_id, status=DeliveryStatus.SENT, age_minutes=30)
    delivery(invitation_id, status=DeliveryStatus.SENDING, age_minutes=30, lease_minutes=40)  # being sent
    published: list[str] = []
    monkeypatch.setattr(deliveries, "deliveries_enqueue_rollback_unsafe", lambda ids: published.extend(map(str, ids)))

    assert deliveries.deliveries_requeue_stale(older_than=datetime.timedelta(minutes=15)) == 2
    assert sorted(published) == sorted([str(stranded.pk), str(abandoned.pk)])
    # Published again just now: the next sweep leaves them to those tasks.
    assert deliveries.deliveries_requeue_stale(older_than=datetime.timedelta(minutes=15)) == 0


def test_the_sweep_publishes_a_retry_or_a_report_whose_own_publish_was_lost(settings, organization, monkeypatch):
    """A task waiting to retry, or a sent email whose report to the workflow is still owed, depends on the retry
    message its task published: if that publish failed, the sweep publishes again once the retry is overdue."""
    settings.INVITATION_EMAIL_RETRY_BACKOFF_MAX = 600.0  # 10 minutes, on top of the 15 of the sweep
    invitation_id = invite(organization, "owed@example.org")
    lost_retry = delivery(invitation_id, status=DeliveryStatus.RETRYING, age_minutes=30)
    delivery(invitation_id, status=DeliveryStatus.RETRYING, age_minutes=20)  # its retry may still come

    def ago(minutes: float):
        return timezone.now() - datetime.timedelta(minutes=minutes)

    waits = {"notify_workflow_id": "bootstrap-wf"}
    owed = delivery(invitation_id, status=DeliveryStatus.SENT, age_minutes=30, sent_at=ago(30), **waits)
    delivery(invitation_id, status=DeliveryStatus.SENT, age_minutes=20, sent_at=ago(20), **waits)
    told = {"failed_at": ago(31), "reported_at": timezone.now()}
    delivery(invitation_id, status=DeliveryStatus.FAILED, age_minutes=31, **told, **waits)
    delivery(invitation_id, status=DeliveryStatus.SENT, age_minutes=32, sent_at=ago(32))  # nobody waits for it
    # Sent three days ago and republished by sweeps since (updated_at moves, sent_at does not): past the horizon.
    delivery(invitation_id, status=DeliveryStatus.SENT, age_minutes=33, sent_at=ago(3 * 24 * 60), **waits)
    published: list[str] = []
    monkeypatch.setattr(deliveries, "deliveries_enqueue_rollback_unsafe", lambda ids: published.extend(map(str, ids)))

    assert deliveries.deliveries_requeue_stale(older_than=datetime.timedelta(minutes=15)) == 2
    assert sorted(published) == sorted([str(lost_retry.pk), str(owed.pk)])


def test_the_scheduled_sweep_gets_a_stranded_email_sent(
    settings, organization, users_worker, celery_worker, smtp, client
):
    """The worker creates the schedule at start; a run of it publishes the stranded delivery and the email
    arrives with a working link."""
    settings.INVITATION_DELIVERY_STALE_AFTER = 60.0
    invitation_id = invite(organization, "late@example.org")
    stranded = delivery(invitation_id, age_minutes=30)

    handle_id = task_queue(DELIVERY_SWEEP_SCHEDULE_ID)

    def described():
        try:
            return temporal.run(lambda client: client.get_schedule_handle(handle_id).describe())
        except RPCError:  # the worker creates it just after it connects
            return None

    description = wait_until(described)
    assert description.schedule.spec.intervals[0].every == datetime.timedelta(
        seconds=settings.INVITATION_DELIVERY_SWEEP_INTERVAL
    )
    temporal.run(lambda client: client.get_schedule_handle(handle_id).trigger())
    wait_until(lambda: InvitationDelivery.objects.get(pk=stranded.pk).status == DeliveryStatus.SENT)
    assert len(smtp.to("late@example.org")) == 1
    assert open_link(client, smtp.token_for("late@example.org")).status_code == 200


def test_a_worker_start_brings_the_schedule_up_to_date(settings, temporal_env):
    from temporal_bridge.worker import ensure_schedules

    handle_id = task_queue(DELIVERY_SWEEP_SCHEDULE_ID)

    async def start_worker_then_describe(client):
        await ensure_schedules(client, ["users"])
        return await client.get_schedule_handle(handle_id).describe()

    settings.INVITATION_DELIVERY_SWEEP_INTERVAL = 120.0
    first = temporal.run(start_worker_then_describe)
    settings.INVITATION_DELIVERY_SWEEP_INTERVAL = 45.0
    second = temporal.run(start_worker_then_describe)  # the schedule exists: updated, not duplicated
    assert first.schedule.spec.intervals[0].every == datetime.timedelta(seconds=120)
    assert second.schedule.spec.intervals[0].every == datetime.timedelta(seconds=45)
    assert second.schedule.action.task_queue == task_queue("users")


def test_a_worker_start_keeps_an_operators_pause(settings, temporal_env):
    from temporal_bridge.worker import ensure_schedules

    handle_id = task_queue(DELIVERY_SWEEP_SCHEDULE_ID)

    async def pause_then_restart(client):
        await ensure_schedules(client, ["users"])
        await client.get_schedule_handle(handle_id).pause(note="mail incident")
        await ensure_schedules(client, ["users"])
        return await client.get_schedule_handle(handle_id).describe()

    state = temporal.run(pause_then_restart).schedule.state
    assert (state.paused, state.note) == (True, "mail incident")


def test_a_report_retried_through_an_outage_keeps_the_sweep_off_and_ends_at_the_horizon(organization, monkeypatch):
    """While Temporal is down, each report's task retries on its own; the sweep must not publish another chain
    beside it every time it runs, and after a day no workflow waits for the report any more."""
    invitation_id = invite(organization, "outage@example.org")
    recent = timezone.now() - datetime.timedelta(minutes=50)
    live = delivery(invitation_id, status=DeliveryStatus.SENT, age_minutes=50, sent_at=recent, notify_workflow_id="wf")
    old = timezone.now() - datetime.timedelta(days=2)
    ancient = delivery(
        invitation_id, status=DeliveryStatus.FAILED, age_minutes=60, failed_at=old, notify_workflow_id="wf"
    )
    published: list[str] = []
    monkeypatch.setattr(deliveries, "deliveries_enqueue_rollback_unsafe", lambda ids: published.extend(map(str, ids)))

    assert deliveries.delivery_report_postponed(delivery_id=str(live.pk)) is True
    assert deliveries.deliveries_requeue_stale(older_than=datetime.timedelta(minutes=15)) == 0, "its own chain is alive"
    live.refresh_from_db()
    assert live.reported_at is None and live.updated_at > recent

    assert deliveries.delivery_report_postponed(delivery_id=str(ancient.pk)) is False
    ancient.refresh_from_db()
    assert ancient.reported_at is not None, "settled: no workflow waits a day for it"
    assert published == []
