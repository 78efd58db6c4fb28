"""The DNS provider interface used by the bootstrap activities."""

from dataclasses import dataclass
from typing import Protocol

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


class DnsPermanentError(DnsError):
    """Retrying will not help: bad credentials, unknown zone, invalid name, the name already points elsewhere."""


class DnsProvider(Protocol):
    name: str

    def fqdn(self, subdomain: str) -> str: ...

    def find_record(self, subdomain: str) -> DnsRecord | None: ...

    def ensure_record(self, subdomain: str) -> DnsRecord:
        """Create the subdomain's CNAME, or return the matching one that exists (idempotent). A record of the
        same name pointing elsewhere raises DnsPermanentError."""
        ...

    def remove_record(self, subdomain: str, record_id: str = "") -> bool:
        """Delete the subdomain's record; False if there was none (idempotent)."""
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
