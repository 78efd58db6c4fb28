"""PowerDNS authoritative server through its HTTP API (/api/v1)."""

import logging
from functools import lru_cache
from typing import Any, Self
from urllib.parse import quote

import httpx
from django.conf import settings

from .base import (
    DnsError,
    DnsPermanentError,
    DnsRecord,
    DnsRecordConflictError,
    DnsTransientError,
    effective_ttl,
    normalize_name,
    qualify,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 15.0


@lru_cache(maxsize=8)
def _client(api_url: str, api_key: str, timeout: float) -> httpx.Client:
    # One connection pool per configuration, shared by the activity threads; httpx.Client is thread-safe.
    return httpx.Client(
        base_url=api_url,
        headers={"X-API-Key": api_key, "Accept": "application/json"},
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
    )


class PowerDnsProvider:
    name = "powerdns"
    is_local = False

    def __init__(
        self,
        *,
        api_url: str,
        api_key: str,
        zone: str,
        target: str,
        server_id: str = "localhost",
        ttl: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not api_key:
            raise DnsPermanentError(
                "DNS_PROVIDER is powerdns but POWERDNS_API_KEY is not set: set it to the server's api-key."
            )
        if not api_url.startswith(("http://", "https://")):
            raise DnsPermanentError(f"POWERDNS_API_URL must be an http(s) URL, not {api_url!r}.")
        if not zone:
            raise DnsPermanentError("Set POWERDNS_ZONE (or DNS_BASE_DOMAIN) to the PowerDNS zone's name.")
        self.zone = normalize_name(zone)
        self.target = normalize_name(target)
        self.server_id = server_id
        self.ttl = effective_ttl(ttl)
        self._key = api_key
        self._http = _client(api_url.rstrip("/"), api_key, timeout)
        # PowerDNS names zones by their canonical (trailing-dot) name.
        self._zone_path = f"/api/v1/servers/{quote(server_id, safe='')}/zones/{quote(self.zone + '.', safe='')}"

    @classmethod
    def from_settings(cls) -> Self:
        return cls(
            api_url=settings.POWERDNS_API_URL,
            api_key=settings.POWERDNS_API_KEY,
            server_id=settings.POWERDNS_SERVER_ID,
            zone=settings.POWERDNS_ZONE,
            target=settings.DNS_TARGET,
            ttl=settings.DNS_RECORD_TTL,
        )

    def fqdn(self, subdomain: str) -> str:
        return qualify(subdomain, self.zone)

    def find_record(self, subdomain: str) -> DnsRecord | None:
        fqdn = self.fqdn(subdomain)
        rrsets = self._rrsets_named(fqdn)
        ours = [r for r in rrsets if self._is_ours(r)]
        return self._to_record(fqdn, (ours or rrsets)[0]) if rrsets else None

    def ensure_record(self, subdomain: str) -> DnsRecord:
        fqdn = self.fqdn(subdomain)
        rrsets = self._rrsets_named(fqdn)
        for rrset in rrsets:
            if self._is_ours(rrset):
                return self._to_record(fqdn, rrset)
        if rrsets:
            other = rrsets[0]
            raise DnsRecordConflictError(
                f"{fqdn} is already taken: PowerDNS has a {other['type']} record with "
                f"{', '.join(_contents(other)) or 'no content'}, not a CNAME to {self.target!r}."
            )
        rrset = {
            "name": fqdn + ".",
            "type": "CNAME",
            "ttl": self.ttl,
            "changetype": "REPLACE",
            "records": [{"content": self.target + ".", "disabled": False}],
        }
        # REPLACE of the one CNAME is idempotent, so a retry after a lost response is harmless.
        self._request("PATCH", f"creating the CNAME {fqdn}", json={"rrsets": [rrset]})
        log.info("Created PowerDNS CNAME %s -> %s", fqdn, self.target)
        return self._to_record(fqdn, rrset)

    def remove_record(self, subdomain: str, record_id: str = "") -> bool:
        # The record id is `fqdn/CNAME`; the name alone identifies the rrset, so look it up either way.
        fqdn = self.fqdn(subdomain)
        rrsets = self._rrsets_named(fqdn)
        ours = [r for r in rrsets if self._is_ours(r)]
        if not ours:
            if rrsets:
                log.warning("Not removing %s: its %s record is not ours", fqdn, rrsets[0]["type"])
            return False
        delete = {"name": fqdn + ".", "type": "CNAME", "changetype": "DELETE"}
        self._request("PATCH", f"deleting the CNAME {fqdn}", json={"rrsets": [delete]})
        log.info("Deleted PowerDNS CNAME %s", fqdn)
        return True

    # --- helpers ------------------------------------------------------------------------------------------

    def _rrsets_named(self, fqdn: str) -> list[dict[str, Any]]:
        # rrset_name narrows the answer on PowerDNS 4.8+; older servers ignore it and send the whole zone.
        zone = self._request("GET", f"looking up {fqdn}", params={"rrset_name": fqdn + "."}).json()
        return [
            rrset
            for rrset in zone.get("rrsets", [])
            if normalize_name(rrset.get("name", "")) == fqdn and any(not r.get("disabled") for r in rrset["records"])
        ]

    def _is_ours(self, rrset: dict[str, Any]) -> bool:
        return rrset["type"] == "CNAME" and self.target in {normalize_name(c) for c in _contents(rrset)}

    def _to_record(self, fqdn: str, rrset: dict[str, Any]) -> DnsRecord:
        contents = _contents(rrset)
        return DnsRecord(
            provider=self.name,
            record_id=f"{fqdn}/{rrset['type']}",
            fqdn=fqdn,
            record_type=rrset["type"],
            target=normalize_name(contents[0]) if contents else "",
            proxied=False,
            ttl=int(rrset.get("ttl") or self.ttl),
        )

    def _request(self, method: str, action: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, self._zone_path, **kwargs)
        except httpx.TimeoutException:
            raise DnsTransientError(f"PowerDNS did not answer in time while {action}.") from None
        except httpx.UnsupportedProtocol as exc:
            raise DnsPermanentError(self._redact(f"Bad POWERDNS_API_URL while {action}: {exc}")) from None
        except httpx.TransportError as exc:
            raise DnsTransientError(
                self._redact(f"Cannot reach PowerDNS while {action} ({type(exc).__name__}: {exc}).")
            ) from None
        if response.is_success:
            return response
        raise self._translate(response, action)

    def _translate(self, response: httpx.Response, action: str) -> DnsError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = body.get("error") if isinstance(body, dict) else None
        detail = detail or response.text.strip()[:200] or response.reason_phrase
        where = f"HTTP {status}: {detail}"
        if status == 429 or status >= 500:
            return DnsTransientError(self._redact(f"PowerDNS failed while {action} ({where})."))
        if status in (401, 403):
            return DnsPermanentError(
                self._redact(f"PowerDNS refused the API key while {action} ({where}); check POWERDNS_API_KEY.")
            )
        if status == 404:
            return DnsPermanentError(
                self._redact(
                    f"PowerDNS server {self.server_id!r} has no zone {self.zone!r} ({where}); check POWERDNS_ZONE "
                    "and POWERDNS_SERVER_ID."
                )
            )
        return DnsPermanentError(self._redact(f"PowerDNS rejected the request while {action} ({where})."))

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "[redacted]")


def _contents(rrset: dict[str, Any]) -> list[str]:
    return [r["content"] for r in rrset.get("records", []) if not r.get("disabled")]
