"""Rendering and sending one invitation email, and telling transient SMTP failures from permanent ones."""

import smtplib
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from .logging import redact
from .models import Invitation

SUBJECTS = {
    "invitation": "You're invited to join {organization} on A4C",
    "resend": "You're invited to join {organization} on A4C",
    "reminder": "Reminder: your invitation to join {organization} on A4C",
}


def accept_url(token: str) -> str:
    """The link in the email: always from INVITATION_BASE_URL, never from a request's Host header."""
    return settings.INVITATION_BASE_URL.rstrip("/") + reverse("invitations:accept_token", args=[token])


def _inviter(invitation: Invitation) -> str:
    user = invitation.invited_by
    if user is None:
        return "The A4C onboarding team"
    return user.get_full_name() or user.get_username()


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render(invitation: Invitation, *, kind: str, token: str) -> RenderedEmail:
    context = {
        "invitation": invitation,
        "organization": invitation.organization.name,
        "inviter": _inviter(invitation),
        "role": invitation.get_role_display(),
        "expires_at": invitation.expires_at,
        "link": accept_url(token),
        "kind": kind,
        "greeting_name": invitation.first_name,
    }
    return RenderedEmail(
        subject=SUBJECTS.get(kind, SUBJECTS["invitation"]).format(organization=invitation.organization.name),
        text=render_to_string("invitations/email/invitation.txt", context),
        html=render_to_string("invitations/email/invitation.html", context),
    )


def send(invitation: Invitation, email: RenderedEmail) -> None:
    message = EmailMultiAlternatives(
        subject=email.subject, body=email.text, from_email=settings.DEFAULT_FROM_EMAIL, to=[invitation.email]
    )
    message.attach_alternative(email.html, "text/html")
    message.send(using="default")


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the server was unreachable or dropped us, or answered 4xx ("try again later")."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(400 <= code < 500 for code, _ in exc.recipients.values())
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
