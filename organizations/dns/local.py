"""The local DNS provider: records in this installation's own table, served by `manage.py run_local_dns`.

For the quickstart and the benchmark: it needs no DNS service, and nothing outside this machine sees the
records.
"""

import logging
from typing import Self

from django.conf import settings
from django.db import IntegrityError, transaction

from .base import DnsRecord, DnsRecordConflictError, effective_ttl, normalize_name, qualify
from .models import LocalDnsRecord

log = logging.getLogger(__name__)


class LocalDnsProvider:
    name = "local"
    is_local = True

    def __init__(self, *, base_domain: str, target: str, ttl: int = 1) -> None:
        self.base_domain = normalize_name(base_domain)
        self.target = normalize_name(target)
        self.ttl = effective_ttl(ttl)

    @classmethod
    def from_settings(cls) -> Self:
        return cls(base_domain=settings.DNS_BASE_DOMAIN, target=settings.DNS_TARGET, ttl=settings.DNS_RECORD_TTL)

    def fqdn(self, subdomain: str) -> str:
        return qualify(subdomain, self.base_domain)

    def find_record(self, subdomain: str) -> DnsRecord | None:
        row = LocalDnsRecord.objects.filter(name=self.fqdn(subdomain)).first()
        return self._to_record(row) if row else None

    def ensure_record(self, subdomain: str) -> DnsRecord:
        fqdn = self.fqdn(subdomain)
        row = LocalDnsRecord.objects.filter(name=fqdn).first()
        if row is None:
            try:
                with transaction.atomic():
                    row = LocalDnsRecord.objects.create(
                        name=fqdn, record_type="CNAME", content=self.target, ttl=self.ttl, proxied=False
                    )
                log.info("Created local CNAME %s -> %s", fqdn, self.target)
            except IntegrityError:
                # A concurrent attempt created the name first (unique); judge what it wrote.
                row = LocalDnsRecord.objects.get(name=fqdn)
        if not self._is_ours(row):
            raise DnsRecordConflictError(
                f"{fqdn} is already taken: the local DNS table has a {row.record_type} record pointing at "
                f"{row.content!r}, not {self.target!r}."
            )
        return self._to_record(row)

    def remove_record(self, subdomain: str, record_id: str = "") -> bool:
        fqdn = self.fqdn(subdomain)
        ours = LocalDnsRecord.objects.filter(name=fqdn, record_type="CNAME", content=self.target)
        if record_id.isdigit():
            ours = ours.filter(pk=int(record_id))
        deleted, _ = ours.delete()
        if not deleted and LocalDnsRecord.objects.filter(name=fqdn).exists():
            log.warning("Not removing %s: its local record is not ours", fqdn)
        return bool(deleted)

    def _is_ours(self, row: LocalDnsRecord) -> bool:
        return row.record_type == "CNAME" and normalize_name(row.content) == self.target

    def _to_record(self, row: LocalDnsRecord) -> DnsRecord:
        return DnsRecord(
            provider=self.name,
            record_id=str(row.pk),
            fqdn=row.name,
            record_type=row.record_type,
            target=normalize_name(row.content),
            proxied=row.proxied,
            ttl=row.ttl,
        )
