from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet

from .models import RELEASED_STATUSES, Organization


def organization_subtree(
    organization: Organization, *, include_self: bool = True, using: str = DEFAULT_DB_ALIAS
) -> QuerySet[Organization]:
    """The organization and everything below it: one range scan on the path index.

    Paths hold only hex digits, so every string that starts with the prefix sorts between the prefix and
    the prefix followed by "g", whatever the database collation.
    """
    qs = Organization.objects.using(using).filter(path__gte=organization.path, path__lt=organization.path + "g")
    return qs if include_self else qs.exclude(pk=organization.pk)


def subdomain_in_use(subdomain: str, *, exclude_id=None, using: str = DEFAULT_DB_ALIAS) -> bool:
    qs = Organization.objects.using(using).filter(subdomain=subdomain).exclude(status__in=RELEASED_STATUSES)
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return qs.exists()
