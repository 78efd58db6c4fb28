"""DNS providers for organization subdomains, chosen by the DNS_PROVIDER setting."""

from .base import (
    DnsError,
    DnsPermanentError,
    DnsProvider,
    DnsRecord,
    DnsRecordConflictError,
    DnsTransientError,
    get_provider,
)

__all__ = [
    "DnsError",
    "DnsPermanentError",
    "DnsProvider",
    "DnsRecord",
    "DnsRecordConflictError",
    "DnsTransientError",
    "get_provider",
]
