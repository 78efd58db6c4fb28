"""The invitation lifecycle on real parts: reminder and expiry timers, revoke, resend, decline, existing
accounts, rate limits, duplicate and failing email deliveries."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from temporalio.api.enums.v1 import EventType

from eventstore.models import Event
from invitations import deliveries, services
from invitations.models import Invitation, InvitationDelivery, Membership
from invitations.payloads import (
    INVITATION_STATE_QUERY,
    InvitationOutcome,
    InvitationState,
    Invitee,
    invitation_workflow_id,
)
from invitations.selectors import TokenState, token_check
from temporal_bridge.client import temporal

from .conftest import HISTORIES
from .helpers import (
    accept_new,
    act,
    fan_out,
    fan_out_start,
    fan_out_wait,
    open_link,
    query,
    wait_until,
    workflow_result,
)

pytestmark = pytest.mark.django_db(transaction=True)


def keep_lifecycle(history_keeper, invitation_id: str, name: str) -> None:
    from invitations.workflows import UserInvitationWorkflow

    path = HISTORIES / f"lifecycle_{name}.json"
    history_keeper(invitation_workflow_id(str(invitation_id)), UserInvitationWorkflow, path)


def outcome(invitation_id: str) -> InvitationOutcome:
    return workflow_result(invitation_workflow_id(str(invitation_id)), InvitationOutcome)


def events_of(invitation_id) -> list[str]:
    return list(
        Event.objects.filter(stream_id=str(invitation_id))
        .order_by("stream_version")
        .values_list("event_type", flat=True)
    )


def test_one_reminder_is_sent_and_the_invitation_then_expires(
    settings, organization, users_worker, celery_worker, smtp, history_keeper
):
    settings.INVITATION_TTL = 4.0
    settings.INVITATION_REMINDER_DELAY = 1.0
    (invitation_id,) = fan_out(organization, [Invitee(email="rem@example.org")]).invitation_ids

    assert outcome(invitation_id).status == "expired"
    messages = smtp.to("rem@example.org")
    assert [m["Subject"].startswith("Reminder") for m in messages] == [False, True]
    assert events_of(invitation_id).count("invitation.reminded") == 1
    assert events_of(invitation_id)[-1] == "invitation.expired"
    assert Invitation.objects.get(pk=invitation_id).status == "expired"
    page = open_link(Client(), smtp.token_for("rem@example.org"))
    assert page.status_code == 410 and b"expired" in page.content
    keep_lifecycle(history_keeper, invitation_id, "reminded_then_expired")


def test_a_new_invitation_workflow_sleeps_until_a_signal_wakes_it(organization, users_worker, celery_worker, smtp):
    (invitation_id,) = fan_out(organization, [Invitee(email="asleep@example.org")]).invitation_ids
    history = temporal.run(lambda c: c.get_workflow_handle(invitation_workflow_id(invitation_id)).fetch_history())
    assert [e.event_type for e in history.events] == [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.first_workflow_task_backoff.ToTimedelta() == timedelta(days=3), "asleep until the reminder"

    assert services.invitation_revoke(invitation_id=invitation_id, reason="Changed our mind")
    assert outcome(invitation_id).status == "revoked"


def test_revoked_invitations_cannot_be_accepted(organization, users_worker, celery_worker, smtp):
    (invitation_id,) = fan_out(organization, [Invitee(email="rev@example.org")]).invitation_ids
    browser = Client()
    assert open_link(browser, smtp.token_for("rev@example.org")).status_code == 200

    assert services.invitation_revoke(invitation_id=invitation_id, reason="Left the practice")
    assert not services.invitation_revoke(invitation_id=invitation_id, reason="again"), "revoking twice is a no-op"
    assert outcome(invitation_id).status == "revoked"
    refused = accept_new(browser)
    assert refused.status_code == 410 and b"withdrawn" in refused.content
    assert not get_user_model().objects.filter(username="rev@example.org").exists()
    assert events_of(invitation_id).count("invitation.revoked") == 1


def test_compensation_revokes_every_pending_invitation_and_ends_their_workflows(
    organization, users_worker, celery_worker, smtp
):
    result = fan_out(organization, [Invitee(email=f"c{i}@example.org") for i in range(3)], revoke_after=True)
    assert result.revoked == 3
    assert {outcome(i).status for i in result.invitation_ids} == {"revoked"}
    assert set(Invitation.objects.filter(organization_id=organization).values_list("status", flat=True)) == {"revoked"}


def test_resend_supersedes_the_earlier_link(organization, users_worker, celery_worker, smtp, history_keeper):
    (invitation_id,) = fan_out(organization, [Invitee(email="again@example.org")]).invitation_ids
    first = smtp.token_for("again@example.org")
    before = Invitation.objects.get(pk=invitation_id).expires_at

    delivery = services.invitation_resend(invitation_id=invitation_id)
    assert delivery is not None
    smtp.wait_for(2)
    second = smtp.token_for("again@example.org")
    assert second != first
    wait_until(lambda: InvitationDelivery.objects.get(pk=delivery.pk).status == "sent")

    old = open_link(Client(), first)
    assert old.status_code == 410 and b"A newer invitation was sent to you" in old.content
    assert open_link(Client(), second).status_code == 200
    after = Invitation.objects.get(pk=invitation_id).expires_at
    assert after > before
    # The resend woke the sleeping workflow; its signal was handled before the run began, and its deadline holds.
    state = query(invitation_workflow_id(invitation_id), INVITATION_STATE_QUERY, InvitationState)
    assert datetime.fromisoformat(state.expires_at) == after

    assert services.invitation_revoke(invitation_id=invitation_id, reason="sent in error")
    assert outcome(invitation_id).status == "revoked"
    keep_lifecycle(history_keeper, invitation_id, "resent_then_revoked")


def test_decline(organization, users_worker, celery_worker, smtp):
    (invitation_id,) = fan_out(organization, [Invitee(email="no@example.org")]).invitation_ids
    browser = Client()
    token = smtp.token_for("no@example.org")
    open_link(browser, token)
    declined = act(browser, "decline")
    assert declined.status_code == 200 and b"declined" in declined.content
    assert outcome(invitation_id).status == "declined"
    assert open_link(Client(), token).status_code == 410
    assert not get_user_model().objects.filter(username="no@example.org").exists()


def test_an_existing_account_logs_in_and_confirms(organization, users_worker, celery_worker, smtp):
    User = get_user_model()
    bob = User.objects.create_user("bob", email="Bob@Example.org", password="bobs own password 1")
    User.objects.create_user("eve", email="eve@example.org", password="eves own password 1")
    (invitation_id,) = fan_out(organization, [Invitee(email="bob@EXAMPLE.org", role="clinician")]).invitation_ids
    browser = Client()
    landing = open_link(browser, smtp.token_for("bob@EXAMPLE.org"))
    assert landing.status_code == 200 and b"Log in to accept" in landing.content

    assert accept_new(browser).status_code == 403, "no new account for an address that has one"
    # Deliberately changed from a 403 "not the invited one" (which told that eve's password was right): another
    # account's right and wrong passwords now get the same answer as a wrong password, so no password oracle.
    for password in ("eves own password 1", "not eves password 1"):
        other = act(browser, "login", username="eve", password=password)
        assert other.status_code == 400
        assert b"Please enter a correct username and password" in other.content
        assert b"not the invited one" not in other.content
    assert act(browser, "login", username="bob", password="not bobs password 1").status_code == 400
    assert "_auth_user_id" not in browser.session
    logged_in = act(browser, "login", username="bob", password="bobs own password 1")
    assert logged_in.status_code == 302
    assert b"Accept as" in browser.get("/invitations/accept/").content
    done = act(browser, "accept")
    assert done.status_code == 200 and b"Welcome to Harbor Health" in done.content

    assert Membership.objects.get(user=bob, organization_id=organization).role == "clinician"
    assert outcome(invitation_id).user_id == bob.pk
    assert not Event.objects.filter(event_type="user.created").exists()
    assert User.objects.count() == 2


def test_a_burst_of_guesses_gets_429_and_creates_nothing(settings, organization, users_worker, celery_worker, smtp):
    settings.INVITATION_ACCEPT_RATE_LIMIT = 5
    (invitation_id,) = fan_out(organization, [Invitee(email="guess@example.org")]).invitation_ids
    browser = Client()
    assert open_link(browser, smtp.token_for("guess@example.org")).status_code == 200
    statuses = [browser.get(f"/invitations/accept/{uuid.uuid4().hex[:16]}.{'x' * 43}/").status_code for _ in range(6)]
    assert statuses[:4] == [302] * 4 and statuses[4:] == [429, 429]
    assert accept_new(browser).status_code == 429
    assert Invitation.objects.get(pk=invitation_id).status == "pending"
    assert not get_user_model().objects.exists()


def test_unknown_tokens_get_404(organization):
    browser = Client()
    assert open_link(browser, "not-a-token").status_code == 404
    assert open_link(browser, f"{'a' * 16}.{'b' * 43}").status_code == 404
    assert Client().get("/invitations/accept/").status_code == 404


def test_a_task_delivered_twice_sends_once(organization, users_worker, celery_worker, smtp):
    result = fan_out(organization, [Invitee(email="twice@example.org")])
    (invitation_id,) = result.invitation_ids
    first = InvitationDelivery.objects.get(invitation_id=invitation_id)
    # Copies of a task whose email went out, and three copies of a fresh one published at once.
    deliveries.deliveries_enqueue_rollback_unsafe([first.pk, first.pk])
    delivery = services.invitation_resend(invitation_id=invitation_id)
    deliveries.deliveries_enqueue_rollback_unsafe([delivery.pk, delivery.pk, delivery.pk])
    wait_until(lambda: InvitationDelivery.objects.get(pk=delivery.pk).status == "sent")
    wait_until(celery_worker.idle)  # every copy has run, each found its delivery sent or taken
    assert len(smtp.to("twice@example.org")) == 2
    assert InvitationDelivery.objects.get(pk=delivery.pk).attempts == 1
    assert events_of(invitation_id).count("invitation.email_sent") == 2


def test_smtp_down_then_back(settings, organization, users_worker, celery_worker, smtp):
    settings.INVITATION_EMAIL_MAX_RETRIES = 20
    smtp.stop()
    workflow_id = fan_out_start(organization, [Invitee(email="down@example.org"), Invitee(email="busy@example.org")])
    wait_until(lambda: InvitationDelivery.objects.filter(attempts__gte=2).count() == 2)
    assert set(InvitationDelivery.objects.values_list("status", flat=True)) <= {"retrying", "sending"}
    smtp.fail_next = 1  # back, but the first message meets a 451
    smtp.start()
    result = fan_out_wait(workflow_id, timeout=120)
    assert sorted(result.sent) == sorted(result.invitation_ids)
    assert smtp.refused == 1
    assert all(d.attempts >= 2 for d in InvitationDelivery.objects.all())
    assert all(d.status == "sent" for d in InvitationDelivery.objects.all())


def test_a_relay_refusing_our_sender_is_retried_not_final(settings, organization, users_worker, celery_worker, smtp):
    """A 5xx to MAIL FROM (a sending quota, credentials being rotated) is our relay's refusal, not the invitee's:
    the email is retried, where it used to fail for good on its first attempt."""
    settings.INVITATION_EMAIL_MAX_RETRIES = 5
    smtp.refuse_sender_next = 1
    result = fan_out(organization, [Invitee(email="quota@example.org")])
    assert result.sent == result.invitation_ids and not result.failed
    assert smtp.refused == 1 and len(smtp.to("quota@example.org")) == 1
    assert InvitationDelivery.objects.get(invitation_id=result.invitation_ids[0]).attempts == 2


def test_a_database_error_while_projecting_the_claim_is_retried(
    monkeypatch, organization, users_worker, celery_worker, smtp
):
    """The claim's `invitation.token_issued` append wraps a projection's failure as ProjectionError; when that failure
    is the database's, the task retries like any database error instead of failing (and waiting for the sweep)."""
    from django.db import OperationalError

    from eventstore.catalogue import EventType
    from invitations import projections

    apply_token, failures = projections._ONE[EventType.INVITATION_TOKEN_ISSUED], []

    def failing_once(event, using):
        if not failures:
            failures.append(event.stream_id)
            raise OperationalError("server closed the connection unexpectedly")
        return apply_token(event, using)

    monkeypatch.setitem(projections._ONE, EventType.INVITATION_TOKEN_ISSUED, failing_once)
    result = fan_out(organization, [Invitee(email="flaky-db@example.org")], results_timeout=20)
    assert failures == result.invitation_ids
    assert result.sent == result.invitation_ids and len(smtp.to("flaky-db@example.org")) == 1


def test_a_database_error_after_the_email_went_out_retries_the_record_not_the_send(
    monkeypatch, organization, users_worker, celery_worker, smtp
):
    """The relay accepted the email, then recording it failed (a database failover). Sending again would mail the
    invitee twice and supersede the link they hold; only the record is retried, and that link stays good."""
    from django.db import OperationalError

    mark_sent, failures = deliveries.delivery_mark_sent, []

    def failing_once(**kwargs):
        if not failures:
            failures.append(kwargs["delivery"].id)
            raise OperationalError("server closed the connection unexpectedly")
        return mark_sent(**kwargs)

    monkeypatch.setattr(deliveries, "delivery_mark_sent", failing_once)
    result = fan_out(organization, [Invitee(email="failover@example.org")], results_timeout=20)
    assert len(failures) == 1
    assert result.sent == result.invitation_ids
    assert len(smtp.to("failover@example.org")) == 1, "sent once"
    delivery = InvitationDelivery.objects.get(invitation_id=result.invitation_ids[0])
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    token = smtp.token_for("failover@example.org")
    assert delivery.token_selector == token.split(".")[0]
    assert token_check(token).state == TokenState.VALID


def test_the_final_failure_is_reported_to_the_workflow(settings, organization, users_worker, celery_worker, smtp):
    settings.INVITATION_EMAIL_MAX_RETRIES = 2
    smtp.stop()
    result = fan_out(organization, [Invitee(email="never@example.org")])
    (invitation_id,) = result.invitation_ids
    assert result.failed == [invitation_id] and not result.sent
    delivery = InvitationDelivery.objects.get(invitation_id=invitation_id)
    assert delivery.status == "failed" and delivery.attempts == 3 and "ConnectionRefused" in delivery.last_error
    invitation = Invitation.objects.get(pk=invitation_id)
    assert invitation.email_status == "failed" and invitation.status == "pending"
    assert events_of(invitation_id).count("invitation.email_failed") == 1
