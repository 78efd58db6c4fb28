"""Rendering and sending one invitation email, and telling transient SMTP failures from permanent ones."""

import contextlib
import smtplib
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.template.loader import render_to_string
from django.urls import reverse

from .logging import redact
from .payloads import DeliveryKind
from .selectors import OutgoingEmail

SUBJECTS = {
    DeliveryKind.INVITATION: "You're invited to join {organization} on A4C",
    DeliveryKind.RESEND: "You're invited to join {organization} on A4C",
    DeliveryKind.REMINDER: "Reminder: your invitation to join {organization} on A4C",
}


def accept_url(token: str) -> str:
    """The link in the email: always from INVITATION_BASE_URL, never from a request's Host header."""
    return settings.INVITATION_BASE_URL.rstrip("/") + reverse("invitations:accept_token", args=[token])


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render(delivery: OutgoingEmail, *, token: str) -> RenderedEmail:
    kind = delivery.kind
    context = {
        "organization": delivery.organization_name,
        "inviter": delivery.inviter,
        "role": delivery.role_display,
        "expires_at": delivery.expires_at,
        "link": accept_url(token),
        "kind": kind,
        "greeting_name": delivery.first_name,
    }
    return RenderedEmail(
        subject=SUBJECTS.get(kind, SUBJECTS[DeliveryKind.INVITATION]).format(organization=delivery.organization_name),
        text=render_to_string("invitations/email/invitation.txt", context),
        html=render_to_string("invitations/email/invitation.html", context),
    )


# A connection idle for longer is not reused: servers drop idle clients (RFC 5321 asks them to wait 5 minutes,
# some wait less), and reconnecting then is cheaper than finding out with a failed send.
SMTP_REUSE_IDLE = 30.0


class _SmtpConnection(threading.local):
    """This thread's (so, under the prefork pool, this process's) open SMTP connection, reused from one email
    to the next: connecting, greeting and TLS are most of what a send costs."""

    backend: SmtpBackend | None = None
    config: str = ""
    used_at: float = 0.0

    def discard(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            with contextlib.suppress(Exception):  # a broken connection is being thrown away anyway
                backend.close()


_smtp = _SmtpConnection()


def _send_reusing(message: EmailMultiAlternatives, config: str) -> None:
    if _smtp.backend is not None and (_smtp.config != config or time.monotonic() - _smtp.used_at > SMTP_REUSE_IDLE):
        _smtp.discard()
    if _smtp.backend is None:
        _smtp.backend, _smtp.config = mailers["default"], config
    backend = _smtp.backend
    try:
        reused = not backend.open()  # open() says whether it had to connect
        try:
            _send_awaiting_reply(backend, message)
        except smtplib.SMTPServerDisconnected as exc:
            if not reused or isinstance(exc.__context__, TimeoutError):
                raise  # a timeout is no stale connection: the relay may have taken the message, so no resend now
            # The server had closed the kept connection, which fails at the first command of the message:
            # send it again at once on a fresh connection (what the task's retry would do, minus the wait).
            backend.close()
            backend.open()
            _send_awaiting_reply(backend, message)
    except BaseException:
        # Any failure leaves the connection in doubt: the next email (or retry) starts a fresh one, and the
        # error goes to the caller as before (is_transient decides whether the task retries).
        _smtp.discard()
        raise
    _smtp.used_at = time.monotonic()


def _send_awaiting_reply(backend: SmtpBackend, message: EmailMultiAlternatives) -> None:
    """Send on an open connection, waiting up to EMAIL_REPLY_TIMEOUT for each answer. A relay may scan a message
    before it answers the final dot (RFC 5321 allows it 10 minutes); timing out there leaves the outcome unknown,
    and the retry that follows can mail the invitee twice. EMAIL_TIMEOUT still bounds connecting."""
    backend.connection.sock.settimeout(settings.EMAIL_REPLY_TIMEOUT)
    try:
        backend.send_messages([message])
    finally:
        if backend.connection is not None and backend.connection.sock is not None:
            backend.connection.sock.settimeout(backend.timeout)


# Answers a send waits for: connecting and the greeting (banner, EHLO, STARTTLS, EHLO again, AUTH) within EMAIL_TIMEOUT
# each, then the message's (MAIL, RCPT, DATA, the final dot) within EMAIL_REPLY_TIMEOUT each.
_GREETING_ANSWERS = 5
_MESSAGE_ANSWERS = 4


def longest_send() -> float:
    """Seconds a send to the configured relay may take before it times out (0 for backends that do not connect).
    A stale kept connection fails at its first command, at once, so its resend fits in the same bound."""
    options = settings.MAILERS.get("default", {}).get("OPTIONS", {})
    if "timeout" not in options:
        return 0.0
    return _GREETING_ANSWERS * options["timeout"] + _MESSAGE_ANSWERS * settings.EMAIL_REPLY_TIMEOUT


def send(delivery: OutgoingEmail, email: RenderedEmail) -> None:
    message = EmailMultiAlternatives(
        subject=email.subject, body=email.text, from_email=settings.DEFAULT_FROM_EMAIL, to=[delivery.email]
    )
    message.attach_alternative(email.html, "text/html")
    config = settings.MAILERS.get("default", {})
    if config.get("BACKEND") == f"{SmtpBackend.__module__}.{SmtpBackend.__name__}":
        _send_reusing(message, repr(config))
    else:  # console, file (one file per connection, so one per email), memory: as Django does it
        message.send(using="default")


# Our own relay refusing us (its greeting, our login, STARTTLS, our sender address, a sending quota): something an
# operator fixes, not a fault of the invitation, so every email in that window must not fail for good at once.
_RELAY_REFUSALS = (
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPNotSupportedError,
)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the server was unreachable, dropped us, answered 4xx ("try again later"), or our relay
    refused us. Final: the recipient or the message refused with 5xx."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, _RELAY_REFUSALS):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, smtplib.SMTPException):  # an OSError subclass, but e.g. "not supported" stays so
        return False
    # Refused or reset connections, timeouts, name resolution.
    return isinstance(exc, OSError)


def describe(exc: BaseException) -> str:
    """A short, token-free description of a send failure for the delivery row, events and the workflow."""
    return redact(f"{type(exc).__name__}: {exc}")[:500]
