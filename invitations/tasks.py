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
from .services import delivery_claim, delivery_mark_sent, delivery_mark_unsent, delivery_report_rollback_unsafe

log = logging.getLogger(__name__)


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, scaled by a random factor in [0.5, 1]."""
    delay = min(
        settings.INVITATION_EMAIL_RETRY_BACKOFF * 2 ** max(attempt - 1, 0), settings.INVITATION_EMAIL_RETRY_BACKOFF_MAX
    )
    return delay * random.uniform(0.5, 1.0)


# max_retries=None: the delivery row counts the attempts (a redelivered message does not reset them).
@shared_task(bind=True, name="invitations.send_invitation_email", acks_late=True, max_retries=None, ignore_result=True)
def send_invitation_email(self, delivery_id: str) -> None:
    try:
        claim = delivery_claim(delivery_id=delivery_id)
    except (DatabaseError, ProjectionError) as exc:
        # The append wraps a projection's failure, which may be the database failing under it.
        cause = exc.__cause__ if isinstance(exc, ProjectionError) else exc
        if not isinstance(cause, DatabaseError):
            raise
        log.warning("Delivery %s: database unavailable (%s); retrying", delivery_id, type(cause).__name__)
        raise self.retry(countdown=backoff(self.request.retries + 1)) from None
    if claim.outcome == "gone":
        log.warning("Delivery %s does not exist; nothing to send", delivery_id)
        return
    if claim.outcome == "busy":
        # Another copy of this task is sending it now: look again when its lease ends (or sooner).
        raise self.retry(countdown=min(claim.retry_in, 5.0))
    delivery = claim.delivery
    if claim.outcome == "send":
        token = claim.token
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
                raise self.retry(countdown=backoff(delivery.attempts)) from None
        else:
            delivery = delivery_mark_sent(delivery=delivery, selector=token.selector)
    # Only now, with the delivery row committed, does the workflow hear of it.
    try:
        delivery_report_rollback_unsafe(delivery=delivery)
    except TemporalUnavailable as exc:
        log.warning("Delivery %s: could not report to Temporal (%s); retrying", delivery_id, exc)
        raise self.retry(countdown=backoff(self.request.retries + 1)) from None
