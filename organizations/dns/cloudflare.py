"""Cloudflare DNS through the official `cloudflare` SDK (API v4)."""

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Self

import cloudflare
import httpx
from django.conf import settings

from .base import (
    DnsError,
    DnsPermanentError,
    DnsRecord,
    DnsRecordConflictError,
    DnsTransientError,
    normalize_name,
    qualify,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 15.0
# "A record with that host already exists" / "An identical record already exists": a concurrent create won.
_ALREADY_EXISTS_CODES = {81053, 81057, 81058}


@lru_cache(maxsize=8)
def _client(api_token: str, base_url: str, timeout: float) -> cloudflare.Cloudflare:
    # One client (and connection pool) per configuration, shared by the activity threads; httpx is thread-safe.
    client = cloudflare.Cloudflare(
        api_token=api_token,
        base_url=base_url or None,
        # Temporal retries the activity; retrying inside it too would multiply attempts and hide 429s.
        max_retries=0,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
    )
    # Settings alone choose the credentials: the SDK would otherwise prefer CLOUDFLARE_API_KEY/EMAIL from the
    # environment over the token.
    client.api_key = client.api_email = client.user_service_key = None
    return client


class CloudflareDnsProvider:
    name = "cloudflare"
    is_local = False

    def __init__(
        self,
        *,
        api_token: str,
        zone_name: str,
        target: str,
        proxied: bool = True,
        ttl: int = 1,
        base_url: str = "",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not api_token:
            raise DnsPermanentError(
                "DNS_PROVIDER is cloudflare but CLOUDFLARE_API_TOKEN is not set: create an API token with "
                "DNS edit rights on the zone and set it."
            )
        if not zone_name:
            raise DnsPermanentError("Set CLOUDFLARE_ZONE_NAME (or DNS_BASE_DOMAIN) to the Cloudflare zone's name.")
        self.zone_name = normalize_name(zone_name)
        self.target = normalize_name(target)
        self.proxied = proxied
        self.ttl = ttl
        self._token = api_token
        self._client = _client(api_token, base_url, timeout)
        self._zone_id: str | None = None

    @classmethod
    def from_settings(cls) -> Self:
        return cls(
            api_token=settings.CLOUDFLARE_API_TOKEN,
            zone_name=settings.CLOUDFLARE_ZONE_NAME,
            target=settings.DNS_TARGET,
            proxied=settings.DNS_PROXIED,
            ttl=settings.DNS_RECORD_TTL,
            base_url=settings.CLOUDFLARE_BASE_URL,
        )

    def fqdn(self, subdomain: str) -> str:
        return qualify(subdomain, self.zone_name)

    def find_record(self, subdomain: str) -> DnsRecord | None:
        records = self._records_named(self.fqdn(subdomain))
        ours = [r for r in records if self._is_ours(r)]
        return self._to_record((ours or records)[0]) if records else None

    def ensure_record(self, subdomain: str) -> DnsRecord:
        fqdn = self.fqdn(subdomain)
        found = self._matching_or_conflict(fqdn)
        if found is not None:
            return found
        zone_id = self._zone()
        action = f"creating the CNAME {fqdn}"
        try:
            created = self._client.dns.records.create(
                zone_id=zone_id, name=fqdn, type="CNAME", content=self.target, proxied=self.proxied, ttl=self.ttl
            )
        except cloudflare.BadRequestError as exc:
            # Created between our check and our create (a concurrent attempt): decide on what is there now.
            found = self._matching_or_conflict(fqdn) if _error_codes(exc) & _ALREADY_EXISTS_CODES else None
            if found is None:
                raise self._translate(exc, action) from None
            return found
        except cloudflare.APIError as exc:
            raise self._translate(exc, action) from None
        if created is None:
            raise DnsTransientError(f"Cloudflare answered the creation of {fqdn} without the record; will re-check.")
        log.info("Created Cloudflare CNAME %s -> %s (id %s)", fqdn, self.target, created.id)
        return self._to_record(created)

    def remove_record(self, subdomain: str, record_id: str = "") -> bool:
        fqdn = self.fqdn(subdomain)
        zone_id = self._zone()
        if not record_id:
            records = self._records_named(fqdn)
            ours = [r for r in records if self._is_ours(r)]
            if not ours:
                if records:
                    log.warning("Not removing %s: its %s record is not ours", fqdn, records[0].type)
                return False
            record_id = ours[0].id
        try:
            self._client.dns.records.delete(record_id, zone_id=zone_id)
        except cloudflare.NotFoundError:
            return False  # already gone
        except cloudflare.APIError as exc:
            raise self._translate(exc, f"deleting the record {fqdn} ({record_id})") from None
        log.info("Deleted Cloudflare record %s (id %s)", fqdn, record_id)
        return True

    # --- helpers ------------------------------------------------------------------------------------------

    def _zone(self) -> str:
        if self._zone_id is None:
            page = self._call(
                f"looking up the zone {self.zone_name}",
                lambda: self._client.zones.list(name=self.zone_name, per_page=50),
            )
            ids = [zone.id for zone in page.result if normalize_name(zone.name) == self.zone_name]
            if not ids:
                raise DnsPermanentError(
                    f"Cloudflare has no zone named {self.zone_name!r} that this API token can see; "
                    "check CLOUDFLARE_ZONE_NAME and the token's zone permissions."
                )
            self._zone_id = ids[0]
        return self._zone_id

    def _records_named(self, fqdn: str) -> list[Any]:
        zone_id = self._zone()
        page = self._call(
            f"looking up the records of {fqdn}",
            lambda: self._client.dns.records.list(zone_id=zone_id, name={"exact": fqdn}, per_page=100),
        )
        # The filter is the API's; checking again costs nothing and guards against a looser match.
        return [r for r in page.result if normalize_name(r.name or "") == fqdn]

    def _matching_or_conflict(self, fqdn: str) -> DnsRecord | None:
        records = self._records_named(fqdn)
        for record in records:
            if self._is_ours(record):
                return self._to_record(record)
        if records:
            other = records[0]
            raise DnsRecordConflictError(
                f"{fqdn} is already taken: Cloudflare has a {other.type} record pointing at "
                f"{normalize_name(str(other.content or ''))!r}, not {self.target!r}."
            )
        return None

    def _is_ours(self, record: Any) -> bool:
        return record.type == "CNAME" and normalize_name(str(record.content or "")) == self.target

    def _to_record(self, record: Any) -> DnsRecord:
        return DnsRecord(
            provider=self.name,
            record_id=record.id,
            fqdn=normalize_name(record.name),
            record_type=record.type,
            target=normalize_name(str(record.content or "")),
            proxied=bool(record.proxied),
            ttl=int(record.ttl or self.ttl),
        )

    def _call[T](self, action: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except cloudflare.APIError as exc:
            # Not chained: the SDK's exception holds the request, Authorization header included.
            raise self._translate(exc, action) from None

    def _translate(self, exc: cloudflare.APIError, action: str) -> DnsError:
        if isinstance(exc, cloudflare.APITimeoutError):
            return DnsTransientError(f"Cloudflare did not answer in time while {action}.")
        if isinstance(exc, cloudflare.APIConnectionError):
            cause = exc.__cause__
            reason = f"{type(cause).__name__}: {cause}" if cause else str(exc)
            return DnsTransientError(self._redact(f"Cannot reach Cloudflare while {action} ({reason})."))
        if not isinstance(exc, cloudflare.APIStatusError):
            return DnsTransientError(self._redact(f"Cloudflare sent an unexpected response while {action}: {exc}"))
        status = exc.status_code
        detail = "; ".join(f"{e.code}: {e.message}" for e in exc.errors) or exc.response.reason_phrase
        where = f"HTTP {status}: {detail}"
        if status == 429:
            retry_after = _retry_after(exc.response)
            hint = f"; retry after {retry_after:g} s" if retry_after is not None else ""
            return DnsTransientError(
                self._redact(f"Cloudflare rate limit reached while {action} ({where}){hint}."), retry_after=retry_after
            )
        if status >= 500:
            return DnsTransientError(self._redact(f"Cloudflare failed while {action} ({where})."))
        if status in (401, 403):
            return DnsPermanentError(
                self._redact(
                    f"Cloudflare refused the API token while {action} ({where}); check that CLOUDFLARE_API_TOKEN "
                    "is valid and has DNS edit rights on the zone."
                )
            )
        return DnsPermanentError(self._redact(f"Cloudflare rejected the request while {action} ({where})."))

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[redacted]") if self._token else text


def _error_codes(exc: cloudflare.APIError) -> set[int]:
    return {e.code for e in exc.errors if e.code is not None}


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None
