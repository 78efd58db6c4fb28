"""Fixed-window attempt counter per client address, in Django's cache (shared by every web process when
CACHE_URL points at Redis)."""

import contextlib
import ipaddress

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The address the nearest trusted proxy saw (PROXY_HOPS from the right of X-Forwarded-For), or REMOTE_ADDR
    with no proxy: behind one, REMOTE_ADDR is the proxy's and every invitee would share one bucket."""
    if hops := settings.PROXY_HOPS:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def client_bucket(request: HttpRequest) -> str:
    """What a client's attempts are counted under: its IPv4 address, or its IPv6 /64, since one subscriber is
    routinely given a whole /64 and could otherwise take a fresh allowance from each of its addresses."""
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped:  # an IPv4 client seen through a dual-stack socket: its /64 would hold every such client
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(ip), 64), strict=False))


def attempt_allowed(request: HttpRequest, *, scope: str = "accept") -> bool:
    """Count one attempt; False once the address has used up INVITATION_ACCEPT_RATE_LIMIT in the window."""
    return count_attempt(
        request,
        scope=f"invitations:attempts:{scope}",
        limit=settings.INVITATION_ACCEPT_RATE_LIMIT,
        window=settings.INVITATION_ACCEPT_RATE_WINDOW,
    )


def count_attempt(request: HttpRequest, *, scope: str, limit: int, window: float) -> bool:
    """Count one attempt of this client in a fixed window, atomically (the cache's incr), so concurrent
    requests cannot all slip under the limit; False once the window's `limit` is used up."""
    key = f"{scope}:{client_bucket(request)}"
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # the window ended between add and incr
        cache.set(key, 1, timeout=window)
        count = 1
    return count <= limit


def uncount_attempt(request: HttpRequest, *, scope: str) -> None:
    """Give back an attempt counted by count_attempt (it turned out not to be one that the limit is for)."""
    with contextlib.suppress(ValueError):  # the window has ended: nothing to give back
        cache.decr(f"{scope}:{client_bucket(request)}")
