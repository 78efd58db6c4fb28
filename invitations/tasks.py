"""The invitation email task: one per delivery row, arguments are ids only; `invitations.deliveries` does the work."""

from celery import shared_task

from .deliveries import SEND_TASK, delivery_process


# max_retries=None: the delivery row counts the attempts (a redelivered message does not reset them).
@shared_task(bind=True, name=SEND_TASK, acks_late=True, max_retries=None, ignore_result=True)
def send_invitation_email(self, delivery_id: str, sent: dict | None = None) -> None:
    """Claim, send, record, report. `sent` (selector and claim count) is given by a retry after the email went out
    but recording it failed: that retry only records it, and never sends again."""
    step = delivery_process(delivery_id=delivery_id, sent=sent, retries=self.request.retries)
    if step.retry_in is not None:
        raise self.retry(countdown=step.retry_in, kwargs={"sent": step.sent} if step.sent is not None else None)
