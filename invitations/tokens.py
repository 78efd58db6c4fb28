"""Invitation tokens: a public selector to find the row, and a secret verifier stored only as a hash.

The link carries `<selector>.<verifier>`. The selector (96 bits) indexes the token table; the verifier
(256 bits from `secrets`) is checked against its SHA-256 in constant time. A plain fast hash is enough
because the verifier is random, not a password: there is nothing to guess offline. Lookups by selector
then comparison of the hash means a timing leak can reveal at most whether a selector exists.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

SELECTOR_BYTES = 12
VERIFIER_BYTES = 32
# Both halves are base64url without padding, joined by a dot; matched whole with fullmatch, since `$` would also
# pass a trailing newline. (The log redaction filter takes whatever follows the link's prefix, whatever its shape.)
TOKEN_PATTERN = re.compile(r"([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class IssuedToken:
    selector: str
    verifier_hash: str
    # The secret half. It exists only in the memory of the task that emails it.
    verifier: str

    @property
    def value(self) -> str:
        return f"{self.selector}.{self.verifier}"

    def __repr__(self) -> str:  # never let the verifier reach a log line or a traceback
        return f"IssuedToken(selector={self.selector!r})"


def hash_verifier(verifier: str) -> str:
    return hashlib.sha256(verifier.encode("ascii")).hexdigest()


def token_issue() -> IssuedToken:
    verifier = secrets.token_urlsafe(VERIFIER_BYTES)
    return IssuedToken(secrets.token_urlsafe(SELECTOR_BYTES), hash_verifier(verifier), verifier)


def token_split(value: str) -> tuple[str, str] | None:
    """(selector, verifier) of a well-formed token, None otherwise."""
    match = TOKEN_PATTERN.fullmatch(value or "")
    return (match.group(1), match.group(2)) if match else None


def verifier_matches(verifier: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_verifier(verifier), stored_hash)
