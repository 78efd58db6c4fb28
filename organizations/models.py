from django.db import models
from django.db.models import Q


class OrganizationType(models.TextChoices):
    PROVIDER = "provider", "Provider"
    PARTNER = "partner", "Partner"


class OrganizationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACTIVE = "active", "Active"
    FAILED = "failed", "Failed"
    DEACTIVATED = "deactivated", "Deactivated"


class DnsStatus(models.TextChoices):
    NOT_CONFIGURED = "not_configured", "Not configured"
    CONFIGURED = "configured", "Configured"
    VERIFIED = "verified", "Verified"
    REMOVED = "removed", "Removed"


# Statuses that give the subdomain back.
RELEASED_STATUSES = (OrganizationStatus.FAILED, OrganizationStatus.DEACTIVATED)

# Length of one path label: the organization id as 32 lowercase hex digits.
PATH_LABEL_LENGTH = 32


class Organization(models.Model):
    """Projection of the organization stream. Written only by `organizations.projections`."""

    id = models.UUIDField(primary_key=True, editable=False)
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=20, choices=OrganizationType.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    # Ancestors' ids then this one's, as fixed-width hex labels with no separator: a subtree is one index
    # range scan on both databases, and hex digits sort the same under every collation.
    path = models.CharField(max_length=PATH_LABEL_LENGTH * 16, db_index=True, editable=False)
    depth = models.PositiveSmallIntegerField(default=0)
    subdomain = models.CharField(max_length=63)
    domain = models.CharField(max_length=253)
    status = models.CharField(max_length=20, choices=OrganizationStatus.choices, default=OrganizationStatus.PENDING)
    dns_status = models.CharField(max_length=20, choices=DnsStatus.choices, default=DnsStatus.NOT_CONFIGURED)
    dns_provider = models.CharField(max_length=20, blank=True)
    dns_record_id = models.CharField(max_length=100, blank=True)
    bootstrap_attempt = models.PositiveIntegerField(default=1)
    failed_step = models.CharField(max_length=50, blank=True)
    failure_message = models.TextField(blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    activated_at = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(help_text="Version of the last event applied from the stream.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["subdomain"],
                condition=~Q(status__in=RELEASED_STATUSES),
                name="organizations_subdomain_in_use",
                violation_error_message="This subdomain is already used by another organization.",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="organizations_status_created")]
        permissions = [("bootstrap_organization", "Can bootstrap organizations")]

    def __str__(self) -> str:
        return self.name


from .dns.models import LocalDnsRecord  # noqa: E402  the local DNS provider's table lives in this app

__all__ = ["LocalDnsRecord", "Organization"]
