"""Invitations, their tokens and memberships (projections of events), and email deliveries (operational rows).

Projection tables are written only by `invitations.projections`; their primary keys come from event data,
so `manage.py rebuild_projections` reproduces them row for row.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from .payloads import FINAL_DELIVERY_STATUSES, DeliveryKind, DeliveryStatus, InvitationStatus, Role

__all__ = ["FINAL_DELIVERY_STATUSES", "DeliveryKind", "DeliveryStatus", "InvitationStatus", "Role"]


def _choices(enum, labels: dict[str, str] | None = None) -> list[tuple[str, str]]:
    # The enums live in payloads (workflow code shares them); the models take their choices from them.
    labels = labels or {}
    return [(member.value, labels.get(member.value, member.value.replace("_", " ").capitalize())) for member in enum]


INVITATION_STATUS_CHOICES = _choices(InvitationStatus)
DELIVERY_KIND_CHOICES = _choices(DeliveryKind)
DELIVERY_STATUS_CHOICES = _choices(DeliveryStatus, {DeliveryStatus.RETRYING: "Waiting to retry"})


class EmailStatus(models.TextChoices):
    NOT_SENT = "not_sent", "Not sent yet"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


ROLE_CHOICES = _choices(Role)


class Invitation(models.Model):
    """Projection of the invitation stream (stream id = primary key)."""

    id = models.UUIDField(primary_key=True, editable=False)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="invitations")
    email = models.EmailField(max_length=254, help_text="As typed by whoever invited.")
    email_canonical = models.CharField(
        max_length=254, db_index=True, help_text="invitations.emails.canonical_email(email): used in every comparison."
    )
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=40, choices=ROLE_CHOICES)
    status = models.CharField(max_length=20, choices=INVITATION_STATUS_CHOICES, default=InvitationStatus.PENDING)
    email_status = models.CharField(max_length=20, choices=EmailStatus.choices, default=EmailStatus.NOT_SENT)
    emails_sent = models.PositiveIntegerField(default=0)
    last_email_error = models.TextField(blank=True)
    # Stream version of the token_issued event of the newest token that was emailed: older tokens are
    # superseded ("a newer invitation was sent to you").
    sent_token_version = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()
    # No database constraint to the user table (not a projection): a rebuild must never trip over it.
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    bootstrap_workflow_id = models.CharField(max_length=200, blank=True)
    status_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    last_emailed_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(help_text="Version of the last event applied from the stream.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email_canonical"],
                condition=Q(status=InvitationStatus.PENDING),
                name="invitations_one_pending_per_email",
                violation_error_message="This address already has a pending invitation to this organization.",
            ),
        ]
        indexes = [models.Index(fields=["organization", "status"], name="invitations_org_status")]
        permissions = [
            ("resend_invitation", "Can resend invitations"),
            ("revoke_invitation", "Can revoke invitations"),
            ("invite_users", "Can invite users to an active organization"),
        ]

    def __str__(self) -> str:
        return f"{self.email} — {self.get_role_display()}"

    @property
    def workflow_id(self) -> str:
        from .payloads import invitation_workflow_id

        return invitation_workflow_id(str(self.id))


class InvitationToken(models.Model):
    """Every token ever issued for an invitation, so a superseded link is recognised. Projection of
    `invitation.token_issued`. Holds only the selector and a SHA-256 of the verifier."""

    selector = models.CharField(primary_key=True, max_length=32)
    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="tokens")
    verifier_hash = models.CharField(max_length=64)
    # Stream version of the token_issued event: orders the tokens of one invitation.
    issued_version = models.PositiveIntegerField()
    issued_at = models.DateTimeField()
    purpose = models.CharField(max_length=20)

    class Meta:
        ordering = ["invitation", "issued_version"]

    def __str__(self) -> str:
        return f"token {self.selector} for {self.invitation_id}"


class Membership(models.Model):
    """A user's role in an organization. Projection of `user.role_granted`; the id is derived from
    (organization, user), so it is the same after a rebuild."""

    id = models.UUIDField(primary_key=True, editable=False)
    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="memberships"
    )
    role = models.CharField(max_length=40, choices=ROLE_CHOICES)
    invitation = models.ForeignKey(Invitation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["organization", "user"]
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="invitations_one_membership")]

    def __str__(self) -> str:
        return f"{self.member_label} — {self.get_role_display()}"

    @property
    def member_label(self) -> str:
        """The person as staff recognise them: "Ada Lovelace <ada@example.org>"."""
        User = self._meta.get_field("user").related_model
        try:
            user = self.user
        except User.DoesNotExist:  # no database constraint: the account may be gone
            return f"Deleted user {self.user_id}"
        name = user.get_full_name() or user.get_username()
        return f"{name} <{user.email}>" if user.email and user.email != name else name


class InvitationDelivery(models.Model):
    """One email to send (operational data, not a projection). Its id is derived from who asked for it
    (workflow, attempt, invitation), so a retried enqueue finds the same row."""

    id = models.UUIDField(primary_key=True, editable=False)
    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=20, choices=DELIVERY_KIND_CHOICES)
    status = models.CharField(max_length=20, choices=DELIVERY_STATUS_CHOICES, default=DeliveryStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # The delivery workflow that hears the outcome (a DeliveryReport signal); empty for nobody.
    notify_workflow_id = models.CharField(max_length=200, blank=True)
    # Selector of the token the sent email carries (never the verifier).
    token_selector = models.CharField(max_length=32, blank=True)
    # A task sending this row holds it until then; a duplicate delivery of the task backs off meanwhile.
    claimed_until = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    queued_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)  # told to its workflow, or no one was left to tell

    class Meta:
        ordering = ["-queued_at"]
        verbose_name_plural = "invitation deliveries"
        indexes = [models.Index(fields=["status", "queued_at"], name="invitations_delivery_status")]

    def __str__(self) -> str:
        return f"{self.kind} email for {self.invitation_id}: {self.status}"
