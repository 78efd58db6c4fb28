"""Reads of organizations: subtrees, counts for the metrics, whether a subdomain is taken."""

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Count, QuerySet
from django.utils import timezone

from .models import RELEASED_STATUSES, Organization, OrganizationStatus


def organization_subtree(
    organization: Organization, *, include_self: bool = True, using: str = DEFAULT_DB_ALIAS
) -> QuerySet[Organization]:
    """The organization and everything below it: one range scan on the path index.

    Paths hold only hex digits, so every string that starts with the prefix sorts between the prefix and
    the prefix followed by "g", whatever the database collation.
    """
    qs = Organization.objects.using(using).filter(path__gte=organization.path, path__lt=organization.path + "g")
    return qs if include_self else qs.exclude(pk=organization.pk)


def organization_counts(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Organizations per status, every status listed (0 where there are none)."""
    found = dict(Organization.objects.using(using).values_list("status").annotate(n=Count("pk")).order_by())
    return {status: found.get(status, 0) for status in OrganizationStatus.values}


def oldest_pending_organization_age(*, using: str = DEFAULT_DB_ALIAS) -> float:
    """Seconds since the oldest organization still pending was created (0 when none is): a bootstrap under way, or
    one stuck. Pending organizations are few, so this reads the status index, not the table."""
    oldest = (
        Organization.objects.using(using)
        .filter(status=OrganizationStatus.PENDING)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0


def subdomain_in_use(subdomain: str, *, exclude_id=None, using: str = DEFAULT_DB_ALIAS) -> bool:
    qs = Organization.objects.using(using).filter(subdomain=subdomain).exclude(status__in=RELEASED_STATUSES)
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return qs.exists()
