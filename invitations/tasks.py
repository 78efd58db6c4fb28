"""The invitation email task: one per delivery row, arguments are ids only.

The token is generated here, just before the email is sent, so its plaintext never crosses the broker or
Temporal; only its selector and the hash of its verifier are stored.
"""

import logging
import random

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from eventstore.exceptions import ProjectionError
from temporal_bridge.client import TemporalUnavailable

from . import mail
from .models import DeliveryStatus
from .selectors import OutgoingEmail, outgoing_email
from .services import (
    delivery_claim,
    delivery_mark_sent,
    delivery_mark_unsent,
    delivery_report_postponed,
    delivery_report_rollback_unsafe,
)

log = logging.getLogger(__name__)


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, scaled by a random factor in [0.5, 1]."""
    delay = min(
        settings.INVITATION_EMAIL_RETRY_BACKOFF * 2 ** max(attempt - 1, 0), settings.INVITATION_EMAIL_RETRY_BACKOFF_MAX
    )
    return delay * random.uniform(0.5, 1.0)


def _database_failure(exc: BaseException) -> BaseException | None:
    """The database error behind `exc`, if that is what it is (an append wraps a projection's failure)."""
    cause = exc.__cause__ if isinstance(exc, ProjectionError) else exc
    return cause if isinstance(cause, DatabaseError) else None


# max_retries=None: the delivery row counts the attempts (a redelivered message does not reset them).
@shared_task(bind=True, name="invitations.send_invitation_email", acks_late=True, max_retries=None, ignore_result=True)
def send_invitation_email(self, delivery_id: str, sent: dict | None = None) -> None:
    """Claim, send, record, report. `sent` (selector and claim count) is given by a retry after the email went out
    but recording it failed: that retry only records it, and never sends again."""
    try:
        delivery = _record_sent(delivery_id, sent) if sent is not None else _claim_and_send(self, delivery_id)
    except (DatabaseError, ProjectionError) as exc:
        if (cause := _database_failure(exc)) is None:
            raise
        log.warning("Delivery %s: database unavailable (%s); retrying", delivery_id, type(cause).__name__)
        raise self.retry(countdown=backoff(self.request.retries + 1)) from None
    if delivery is None:
        return
    # Only now, with the delivery row committed, does the workflow hear of it.
    try:
        delivery_report_rollback_unsafe(delivery=delivery)
    except TemporalUnavailable as exc:
        if delivery_report_postponed(delivery_id=delivery_id):
            log.warning("Delivery %s: could not report to Temporal (%s); retrying", delivery_id, exc)
            raise self.retry(countdown=backoff(self.request.retries + 1)) from None


def _claim_and_send(task, delivery_id: str) -> OutgoingEmail | None:
    claim = delivery_claim(delivery_id=delivery_id)
    if claim.outcome == "gone":
        log.warning("Delivery %s does not exist; nothing to send", delivery_id)
        return None
    if claim.outcome == "busy":
        # Another copy of this task is sending it now: look again when its lease ends (or sooner).
        raise task.retry(countdown=min(claim.retry_in, 5.0))
    if claim.outcome == "send":
        return _send(task, claim.delivery, claim.token)
    return claim.delivery


def _send(task, delivery: OutgoingEmail, token) -> OutgoingEmail:
    try:
        mail.send(delivery, mail.render(delivery, token=token.value))
    except Exception as exc:
        error = mail.describe(exc)
        final = not mail.is_transient(exc) or delivery.attempts > settings.INVITATION_EMAIL_MAX_RETRIES
        delivery = delivery_mark_unsent(delivery=delivery, error=error, final=final)
        log.warning(
            "Invitation email %s (attempt %d) failed%s: %s",
            delivery.id,
            delivery.attempts,
            "" if final else ", will retry",
            error,
        )
        if delivery.status == DeliveryStatus.RETRYING:  # not if another copy took the delivery over meanwhile
            raise task.retry(countdown=backoff(delivery.attempts)) from None
        return delivery
    try:
        return delivery_mark_sent(delivery=delivery, selector=token.selector)
    except (DatabaseError, ProjectionError) as exc:
        if _database_failure(exc) is None:
            raise
        # The email is out: sending it again would mail the invitee twice and supersede the link they hold, so only
        # the record of it is retried, fenced by this claim (the selector is the token's public half).
        log.warning("Delivery %s was sent but not recorded (database unavailable); retrying the record", delivery.id)
        sent = {"selector": token.selector, "attempts": delivery.attempts}
        raise task.retry(kwargs={"sent": sent}, countdown=backoff(task.request.retries + 1)) from None


def _record_sent(delivery_id: str, sent: dict) -> OutgoingEmail | None:
    delivery = outgoing_email(delivery_id)
    if delivery is None or delivery.attempts != sent["attempts"] or delivery.status != DeliveryStatus.SENDING:
        # Recorded after all, or another copy has claimed the delivery since: the row as it stands is the outcome.
        return delivery
    return delivery_mark_sent(delivery=delivery, selector=sent["selector"])
