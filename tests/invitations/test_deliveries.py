"""Email deliveries (invitations.deliveries): claims and leases, copies of a task racing, reports to the fan-out."""

import smtplib
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError, RPCStatusCode

from eventstore.events import EventMetadata
from eventstore.models import Event
from invitations import deliveries, services
from invitations.models import InvitationDelivery
from invitations.payloads import Invitee
from invitations.selectors import outgoing_email
from temporal_bridge.client import TemporalUnavailable, temporal

pytestmark = pytest.mark.django_db


def _lease_runs_out(delivery_id: str) -> None:
    """Time passes past the lease, on the database's clock, which is the one the claim reads."""
    import datetime

    from django.db.models.functions import Now

    InvitationDelivery.objects.filter(pk=delivery_id).update(claimed_until=Now() - datetime.timedelta(seconds=1))


def _queued_delivery(organization, email: str) -> str:
    import datetime

    (invitation_id,) = services.invitations_generate(
        organization_id=organization,
        invitees=[Invitee(email=email)],
        key_prefix=f"test/{email}",
        metadata=EventMetadata(),
    )
    delivery_id = str(deliveries.delivery_id_for(f"test/{email}/{invitation_id}"))
    now = datetime.datetime.now(datetime.UTC)
    InvitationDelivery.objects.create(
        id=delivery_id, invitation_id=invitation_id, kind="invitation", queued_at=now, updated_at=now
    )
    return delivery_id


def test_a_claim_outlasts_the_longest_send_to_a_slow_relay(organization, settings):
    """A relay allowed the RFC's 10 minutes to answer the final dot: a copy of the task must not take the delivery
    over while the first copy still waits for that answer, or the invitee gets the email twice."""
    from django.db.models.functions import Now

    settings.EMAIL_REPLY_TIMEOUT = 600
    settings.MAILERS = {
        "default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": {"timeout": 10}}
    }
    delivery_id = _queued_delivery(organization, "slow-relay@example.org")
    assert deliveries.delivery_claim(delivery_id=delivery_id).outcome == "send"

    held = InvitationDelivery.objects.annotate(now=Now()).get(pk=delivery_id)
    # Five greeting answers within 10 s each, four message answers within 600 s each, and a margin.
    assert (held.claimed_until - held.now).total_seconds() >= 5 * 10 + 4 * 600
    assert deliveries.delivery_claim(delivery_id=delivery_id).outcome == "busy"


def test_a_host_whose_clock_runs_ahead_does_not_take_over_a_held_delivery(organization, monkeypatch):
    """The lease is set and checked on the database's clock: a Celery host an hour fast still sees it held."""
    import datetime

    from django.utils import timezone

    delivery_id = _queued_delivery(organization, "skew@example.org")
    assert deliveries.delivery_claim(delivery_id=delivery_id).outcome == "send"
    fast = timezone.now() + datetime.timedelta(hours=1)
    monkeypatch.setattr(timezone, "now", lambda: fast)
    assert deliveries.delivery_claim(delivery_id=delivery_id).outcome == "busy"
    _lease_runs_out(delivery_id)
    assert deliveries.delivery_claim(delivery_id=delivery_id).outcome == "send"


def test_a_copy_whose_lease_ran_out_cannot_overwrite_the_copy_that_took_over(organization):
    """Copy A of an email task is still sending when its lease runs out; copy B claims the delivery and sends it.
    A's late outcome (sent or failed) must not overwrite B's, or A's retry would send the email a third time."""
    import datetime

    from invitations.models import DeliveryStatus

    (invitation_id,) = services.invitations_generate(
        organization_id=organization,
        invitees=[Invitee(email="lease@example.org")],
        key_prefix="test-lease",
        metadata=EventMetadata(),
    )
    delivery_id = str(deliveries.delivery_id_for(f"test-lease/{invitation_id}"))
    now = datetime.datetime.now(datetime.UTC)
    InvitationDelivery.objects.create(
        id=delivery_id, invitation_id=invitation_id, kind="invitation", queued_at=now, updated_at=now
    )
    a = deliveries.delivery_claim(delivery_id=delivery_id)
    _lease_runs_out(delivery_id)
    b = deliveries.delivery_claim(delivery_id=delivery_id)
    assert (a.outcome, b.outcome) == ("send", "send")
    deliveries.delivery_mark_sent(delivery=b.delivery, selector=b.token.selector)

    late_failure = deliveries.delivery_mark_unsent(delivery=a.delivery, error="SMTPServerDisconnected", final=False)
    assert late_failure.status == DeliveryStatus.SENT  # what the task sees: no retry
    assert deliveries.delivery_mark_sent(delivery=a.delivery, selector=a.token.selector).status == DeliveryStatus.SENT
    row = InvitationDelivery.objects.get(pk=delivery_id)
    assert (row.status, row.token_selector) == (DeliveryStatus.SENT, b.token.selector)
    assert deliveries.delivery_claim(delivery_id=delivery_id).outcome == "done"
    sent = Event.objects.filter(stream_id=invitation_id, event_type="invitation.email_sent")
    assert [e.data["selector"] for e in sent] == [b.token.selector]


def sent_delivery(organization, notify_workflow_id="bootstrap-wf"):
    (invitation_id,) = services.invitations_generate(
        organization_id=organization,
        invitees=[Invitee(email="told@example.org")],
        key_prefix="t",
        metadata=EventMetadata(),
    )
    deliveries.invitation_emails_enqueue(
        organization_id=organization, invitation_ids=[invitation_id], notify_workflow_id=notify_workflow_id, scope="t"
    )
    claim = deliveries.delivery_claim(delivery_id=str(InvitationDelivery.objects.get().pk))
    return deliveries.delivery_mark_sent(delivery=claim.delivery, selector=claim.token.selector)


def test_a_delivery_is_reported_to_its_workflow_once(organization, temporal_env):
    """A redelivered or republished task finds the delivery done: telling the workflow again would only use up
    its signals (Temporal caps them per execution)."""
    waiting = f"waiting-{uuid.uuid4()}"  # a run on a queue no worker serves: it keeps what it is sent
    temporal.run(lambda client: client.start_workflow("Waiting", id=waiting, task_queue="nobody-serves-this"))
    delivery = sent_delivery(organization, notify_workflow_id=waiting)
    assert deliveries.delivery_report_rollback_unsafe(delivery=delivery) is not None
    again = outgoing_email(delivery.id)
    assert again.reported_at is not None
    assert deliveries.delivery_report_rollback_unsafe(delivery=again) is None

    history = temporal.run(lambda client: client.get_workflow_handle(waiting).fetch_history())
    signalled = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
    assert len(signalled) == 1


def test_a_report_to_a_workflow_that_has_ended_is_settled(organization, temporal_env):
    delivery = sent_delivery(organization, notify_workflow_id=f"gone-{uuid.uuid4()}")  # Temporal: NOT_FOUND
    assert deliveries.delivery_report_rollback_unsafe(delivery=delivery) is None
    assert outgoing_email(delivery.id).reported_at is not None, "settled: no one is left to tell"


# Refusals a dev server will not produce on demand (a quota, the signal cap), simulated at the client's boundary.


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        (RPCStatusCode.RESOURCE_EXHAUSTED, True),
        (RPCStatusCode.FAILED_PRECONDITION, True),  # a namespace failing over
        (RPCStatusCode.UNAUTHENTICATED, True),  # credentials being rotated
        (RPCStatusCode.INVALID_ARGUMENT, False),
    ],
)
def test_a_report_temporal_refuses_for_good_is_not_retried_forever(organization, monkeypatch, status, retried):
    def refuse(call, **kwargs):
        raise RPCError("signal count limit exceeded", status, b"")

    monkeypatch.setattr(temporal, "run", refuse)
    delivery = sent_delivery(organization)
    if retried:
        with pytest.raises(TemporalUnavailable):
            deliveries.delivery_report_rollback_unsafe(delivery=delivery)
        assert outgoing_email(delivery.id).reported_at is None, "to be reported later"
    else:
        assert deliveries.delivery_report_rollback_unsafe(delivery=delivery) is None
        assert outgoing_email(delivery.id).reported_at is not None, "settled: no one is left to tell"


def test_a_relay_slow_to_answer_a_message_on_a_kept_connection_gets_it_once(smtp, settings):
    """A relay that scans messages answers the final dot late. Waiting only EMAIL_TIMEOUT for that answer, the
    sender took the timeout on a kept connection for a stale connection and sent the message again at once: the
    invitee got it twice (and the task then failed anyway, to send it a third time later)."""
    from types import SimpleNamespace

    from invitations import mail

    settings.MAILERS["default"]["OPTIONS"]["timeout"] = 1
    settings.EMAIL_REPLY_TIMEOUT = 10
    rendered = mail.RenderedEmail(subject="Welcome", text="Hello", html="<p>Hello</p>")
    mail._smtp.discard()
    try:
        mail.send(SimpleNamespace(email="first@example.test"), rendered)  # opens the connection that is kept
        smtp.reply_delay = 2.5
        mail.send(SimpleNamespace(email="scanned@example.test"), rendered)
        # Past EMAIL_REPLY_TIMEOUT the outcome is unknown: the error goes to the task (which retries later), and
        # the message is not sent again at once as if the kept connection had gone stale.
        settings.EMAIL_REPLY_TIMEOUT = 1
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            mail.send(SimpleNamespace(email="late@example.test"), rendered)
    finally:
        mail._smtp.discard()
    assert [to for to, _ in smtp.messages] == [["first@example.test"], ["scanned@example.test"], ["late@example.test"]]
