"""The DNS provider interface used by the bootstrap activities."""

import re
from dataclasses import dataclass
from typing import Protocol, Self

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class DnsRecord:
    provider: str
    record_id: str
    fqdn: str
    record_type: str
    target: str
    proxied: bool = False
    ttl: int = 1


class DnsError(Exception):
    """A provider call failed."""


class DnsTransientError(DnsError):
    """Worth retrying: timeouts, connection errors, HTTP 429 and 5xx."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the provider asked us to wait (Retry-After), if it said


class DnsPermanentError(DnsError):
    """Retrying will not help: bad credentials, unknown zone, invalid name, the name already points elsewhere."""


class DnsRecordConflictError(DnsPermanentError):
    """The name is already taken by a record that does not point at our target."""


# Cloudflare's "automatic" TTL (DNS_RECORD_TTL=1) is 300 seconds; other providers have no such value.
AUTOMATIC_TTL = 300


def effective_ttl(ttl: int) -> int:
    return AUTOMATIC_TTL if ttl <= 1 else ttl


_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def normalize_name(name: str) -> str:
    """Lowercase, no trailing dot: the one form names are compared and stored in."""
    return name.strip().rstrip(".").lower()


def qualify(subdomain: str, zone: str) -> str:
    """`subdomain.zone`, lowercase. The subdomain must be one DNS label (letters, digits, inner hyphens)."""
    label = subdomain.strip().lower()
    if not _LABEL.match(label):
        raise DnsPermanentError(
            f"Invalid subdomain {subdomain!r}: use one DNS label of 1-63 letters, digits and inner hyphens."
        )
    return f"{label}.{normalize_name(zone)}"


class DnsProvider(Protocol):
    name: str
    is_local: bool  # records that exist only in this installation's own table (the admin says so)

    @classmethod
    def from_settings(cls) -> Self: ...

    def fqdn(self, subdomain: str) -> str: ...

    def find_record(self, subdomain: str) -> DnsRecord | None:
        """The record at the subdomain's name, whatever it points at (compare `target`), or None."""
        ...

    def ensure_record(self, subdomain: str) -> DnsRecord:
        """Create the subdomain's CNAME, or return the matching one that exists (idempotent). A record of the
        same name pointing elsewhere raises DnsPermanentError."""
        ...

    def remove_record(self, subdomain: str, record_id: str = "") -> bool:
        """Delete the subdomain's record (by `record_id` when given); False if there was none (idempotent).
        Found by name, a record that does not point at our target is someone else's: left alone, False."""
        ...


PROVIDERS = {
    "local": "organizations.dns.local.LocalDnsProvider",
    "cloudflare": "organizations.dns.cloudflare.CloudflareDnsProvider",
    "powerdns": "organizations.dns.powerdns.PowerDnsProvider",
}


def get_provider(name: str | None = None) -> DnsProvider:
    name = name or settings.DNS_PROVIDER
    try:
        path = PROVIDERS[name]
    except KeyError:
        raise DnsPermanentError(f"Unknown DNS_PROVIDER {name!r}; choose one of {', '.join(PROVIDERS)}.") from None
    return import_string(path).from_settings()
