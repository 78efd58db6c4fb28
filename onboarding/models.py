"""What support asks for: an organization to bootstrap and its first users."""

import uuid

from django.conf import settings
from django.db import models

from invitations.models import ROLE_CHOICES
from invitations.payloads import Role
from organizations.models import Organization, OrganizationType


class OnboardingRequest(models.Model):
    """What support asks for: an organization to bootstrap and its first users.

    A plain record of the request, not a projection: the organization itself only comes into being through
    the workflow's events. The organization id is drawn here, before any start, and is the one id used for
    the workflow id, the event stream and the status URL.
    """

    organization_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=20, choices=OrganizationType.choices, default=OrganizationType.PROVIDER)
    subdomain = models.CharField(
        max_length=63,
        help_text="Lowercase letters, digits and hyphens; the first part of the organization's address.",
    )
    parent = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    bootstrap_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    bootstrap_attempts = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.subdomain})"


class OnboardingInvitee(models.Model):
    request = models.ForeignKey(OnboardingRequest, on_delete=models.CASCADE, related_name="invitees")
    email = models.EmailField()
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=30, choices=ROLE_CHOICES, default=Role.ORGANIZATION_ADMIN)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.email} ({self.role})"
