"""DNS verification: ask several resolvers in parallel whether a name points at our target; need a quorum."""

import ipaddress
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
from django.conf import settings

from .base import DnsPermanentError, DnsRecord, normalize_name


@dataclass(frozen=True)
class ResolverCheck:
    """One resolver's answer: `answer` lists what it said (e.g. "CNAME app.example.com."), `error` why it does
    not agree (timeout, NXDOMAIN, wrong target, ...), empty when it agrees."""

    resolver: str
    agreed: bool
    answer: tuple[str, ...] = ()
    error: str = ""

    def describe(self) -> str:
        said = ", ".join(self.answer)
        if self.agreed:
            return f"{self.resolver}: ok ({said})"
        return f"{self.resolver}: {self.error}" + (f" ({said})" if said and said not in self.error else "")


@dataclass(frozen=True)
class VerificationResult:
    fqdn: str
    target: str
    proxied: bool
    quorum: int
    verified: bool
    agreeing: tuple[str, ...]
    checks: tuple[ResolverCheck, ...]

    @property
    def summary(self) -> str:
        head = f"{len(self.agreeing)} of {len(self.checks)} resolvers agree (quorum {self.quorum})"
        return f"{head}: " + "; ".join(check.describe() for check in self.checks)


def parse_resolver(spec: str) -> tuple[str, int]:
    """`ip`, `ip:port`, or `[ipv6]:port` -> (ip, port)."""
    text = spec.strip()
    port_text = "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text
    try:
        ipaddress.ip_address(host)
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise DnsPermanentError(
            f"Invalid DNS resolver {spec!r}: use an IP address with an optional port, "
            "e.g. 1.1.1.1, 127.0.0.1:5353 or [::1]:53."
        ) from None
    return host, port


def verify_record(
    fqdn: str, target: str, *, resolvers: list[str], quorum: int, timeout: float, proxied: bool = False
) -> VerificationResult:
    """Ask every resolver at once, each within `timeout` seconds. A resolver agrees when it answers a CNAME to
    `target`, or, for a proxied record (served as A/AAAA by the proxy), with addresses."""
    if not resolvers:
        raise DnsPermanentError("No DNS resolvers to verify with: set DNS_VERIFY_RESOLVERS.")
    if len(set(resolvers)) != len(resolvers):
        raise DnsPermanentError(f"DNS resolvers listed twice in {resolvers}: a quorum needs distinct resolvers.")
    if not 1 <= quorum <= len(resolvers):
        raise DnsPermanentError(f"DNS quorum must be between 1 and the {len(resolvers)} resolvers, not {quorum}.")
    if timeout <= 0:
        raise DnsPermanentError(f"DNS verification timeout must be positive, not {timeout}.")
    addresses = [parse_resolver(spec) for spec in resolvers]
    name = dns.name.from_text(normalize_name(fqdn))
    wanted = dns.name.from_text(normalize_name(target))

    with ThreadPoolExecutor(max_workers=len(resolvers), thread_name_prefix="dns-verify") as pool:
        futures = [
            pool.submit(_check, spec, host, port, name, wanted, timeout, proxied)
            for spec, (host, port) in zip(resolvers, addresses, strict=True)
        ]
        checks = tuple(future.result() for future in futures)
    agreeing = tuple(check.resolver for check in checks if check.agreed)
    return VerificationResult(
        fqdn=normalize_name(fqdn),
        target=normalize_name(target),
        proxied=proxied,
        quorum=quorum,
        verified=len(agreeing) >= quorum,
        agreeing=agreeing,
        checks=checks,
    )


def verify_from_settings(record: DnsRecord) -> VerificationResult:
    return verify_record(
        record.fqdn,
        record.target,
        resolvers=list(settings.DNS_VERIFY_RESOLVERS),
        quorum=settings.DNS_VERIFY_QUORUM,
        timeout=settings.DNS_VERIFY_TIMEOUT,
        proxied=record.proxied,
    )


def _check(
    spec: str,
    host: str,
    port: int,
    name: dns.name.Name,
    wanted: dns.name.Name,
    timeout: float,
    proxied: bool,
) -> ResolverCheck:
    deadline = time.monotonic() + timeout
    try:
        # Ask for A: a resolver returns the CNAME chain, and a proxied name answers with addresses.
        response = _ask(name, dns.rdatatype.A, host, port, deadline)
        cname = response.get_rrset(response.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname:
            points_at = cname[0].target
            said = (f"CNAME {points_at}",)
            if points_at == wanted:
                return ResolverCheck(spec, True, said)
            return ResolverCheck(spec, False, said, f"wrong target: CNAME to {points_at}, expected {wanted}")
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            return ResolverCheck(spec, False, (), dns.rcode.to_text(rcode))
        addresses = _addresses(response, name)
        if not addresses and proxied:
            addresses = _addresses(_ask(name, dns.rdatatype.AAAA, host, port, deadline), name)
        if not addresses:
            return ResolverCheck(spec, False, (), "no answer (the name exists but has no CNAME or address)")
        if proxied:
            return ResolverCheck(spec, True, addresses)
        return ResolverCheck(spec, False, addresses, f"no CNAME to {wanted}: answered with addresses")
    except dns.exception.Timeout:
        return ResolverCheck(spec, False, (), f"timeout after {timeout:g} s")
    except OSError as exc:
        return ResolverCheck(spec, False, (), f"unreachable: {exc.strerror or exc}")
    except dns.exception.DNSException as exc:
        return ResolverCheck(spec, False, (), f"bad response: {exc}")


def _ask(name: dns.name.Name, rdtype: int, host: str, port: int, deadline: float) -> dns.message.Message:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise dns.exception.Timeout
    query = dns.message.make_query(name, rdtype)
    try:
        return dns.query.udp(query, host, timeout=remaining, port=port, raise_on_truncation=True)
    except dns.message.Truncated:
        # Not udp_with_fallback: it would give TCP a fresh timeout, and the resolver's budget is one timeout.
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise dns.exception.Timeout from None
        return dns.query.tcp(query, host, timeout=remaining, port=port)


def _addresses(response: dns.message.Message, name: dns.name.Name) -> tuple[str, ...]:
    found: list[str] = []
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        rrset = response.get_rrset(response.answer, name, dns.rdataclass.IN, rdtype)
        if rrset:
            found += [f"{dns.rdatatype.to_text(rdtype)} {rdata.address}" for rdata in rrset]
    return tuple(found)
