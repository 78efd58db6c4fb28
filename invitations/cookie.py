"""The invitation cookie: a session credential for the invitation pages only.

The GET with the link's token sets it once the verifier matched; it carries that token's selector, signed with
a timestamp (django.core.signing, salted) so it cannot be made or altered without the secret key, and never
the verifier. Scoped to /invitations/, HttpOnly, SameSite=Lax, Secure like the session cookie, for an hour.
Django's session is left alone: an invitee who has not logged in has none, and costs no session read.
"""

import time

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

COOKIE = "a4c_invitation"
SALT = "invitations.accept"
PATH = "/invitations/"
MAX_AGE = 3600

# Checking the signature is a fifth of what a cached landing page costs, and a given signed value checks out
# the same way until its timestamp is MAX_AGE old: each process remembers the values it has checked.
_checked: dict[str, tuple[str, float]] = {}
_CHECKED_MAX = 4096


def remember(response: HttpResponse, selector: str) -> None:
    response.set_signed_cookie(
        COOKIE,
        selector,
        salt=SALT,
        max_age=MAX_AGE,
        path=PATH,
        secure=settings.SESSION_COOKIE_SECURE,  # as the session cookie: Secure unless DEBUG
        httponly=True,
        samesite="Lax",
    )


def forget(response: HttpResponse) -> None:
    response.delete_cookie(COOKIE, path=PATH, samesite="Lax")


def remembered(request: HttpRequest) -> str:
    """The selector of the token checked earlier in this browser; "" if none, altered, or older than MAX_AGE."""
    value = request.COOKIES.get(COOKIE, "")
    if (checked := _checked.get(value)) is not None and time.time() < checked[1]:
        return checked[0]
    selector = request.get_signed_cookie(COOKIE, default="", salt=SALT, max_age=MAX_AGE)
    if selector:
        signed_at = signing.b62_decode(value.rsplit(":", 2)[1])  # TimestampSigner: value:timestamp:signature
        if len(_checked) >= _CHECKED_MAX:
            _checked.clear()
        _checked[value] = (selector, signed_at + MAX_AGE)
    return selector
