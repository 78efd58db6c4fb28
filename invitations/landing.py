"""The landing page's micro-cache: per process, what a selector's invitation looked like and the anonymous
pages rendered from it, kept for `INVITATION_LANDING_CACHE_TTL` seconds.

A link is opened by its invitee, a mail scanner or two, and reloads; a burst of those GETs then costs one
read and one rendering per process instead of one per request. The price is that a GET can show an
invitation up to the TTL out of date (for instance "Join ..." for a few seconds after it was revoked
elsewhere). Nothing is ever decided on this copy: every POST reads the database again and the services
check the invitation once more in their transaction, so a stale page can only be displayed, never acted on.
"""

import threading
import time
from dataclasses import dataclass, field

from django.conf import settings

from .selectors import InvitationPage, invitation_page


@dataclass
class _Entry:
    read_at: float
    page: InvitationPage | None
    # Rendered pages by mode ("new", "login": the ones that depend on the invitation alone), with the CSRF
    # token still a placeholder.
    html: dict[str, bytes] = field(default_factory=dict)


class LandingCache:
    def __init__(self, max_entries: int = 4096) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def _fresh(self, selector: str) -> _Entry | None:
        # The TTL is read on every use, so lowering it (tests set 0) makes older copies stale at once.
        entry = self._entries.get(selector)
        if entry is not None and time.monotonic() - entry.read_at < settings.INVITATION_LANDING_CACHE_TTL:
            return entry
        return None

    def page(self, selector: str) -> InvitationPage | None:
        """The invitation behind `selector`, read at most TTL seconds ago by this process."""
        if (entry := self._fresh(selector)) is not None:
            return entry.page
        read_at = time.monotonic()
        page = invitation_page(selector)
        if settings.INVITATION_LANDING_CACHE_TTL > 0:
            with self._lock:
                if len(self._entries) >= self._max_entries:
                    del self._entries[next(iter(self._entries))]  # the oldest insertion
                self._entries[selector] = _Entry(read_at, page)
        return page

    def html(self, page: InvitationPage, mode: str) -> bytes | None:
        entry = self._fresh(page.selector)
        return entry.html.get(mode) if entry is not None and entry.page is page else None

    def keep_html(self, page: InvitationPage, mode: str, html: bytes) -> None:
        entry = self._fresh(page.selector)
        if entry is not None and entry.page is page:
            entry.html[mode] = html

    def forget(self, selector: str) -> None:
        """After this process changed the invitation or checked its token again: read it afresh next time."""
        with self._lock:
            self._entries.pop(selector, None)


landing_cache = LandingCache()
