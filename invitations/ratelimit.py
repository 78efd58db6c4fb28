"""Fixed-window attempt counter per client address, in Django's cache (shared by every web process when
CACHE_URL points at Redis)."""

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is set by the client unless a trusted proxy rewrites it.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def attempt_allowed(request: HttpRequest, *, scope: str = "accept") -> bool:
    """Count one attempt; False once the address has used up INVITATION_ACCEPT_RATE_LIMIT in the window."""
    key = f"invitations:attempts:{scope}:{client_address(request)}"
    window = settings.INVITATION_ACCEPT_RATE_WINDOW
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # the window ended between add and incr
        cache.set(key, 1, timeout=window)
        count = 1
    return count <= settings.INVITATION_ACCEPT_RATE_LIMIT
