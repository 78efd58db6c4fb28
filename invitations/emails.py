"""The one canonical form of an email address, used in every comparison (uniqueness, matching an account).

NFKC folds look-alike Unicode forms; the whole address is lowercased because no mail system we deliver to
treats local parts case-sensitively, and treating them so would let one person hold two invitations.
Dots and +tags are kept: providers disagree on them, so folding them could merge two different people.
"""

import unicodedata


def canonical_email(email: str) -> str:
    return unicodedata.normalize("NFKC", email).strip().lower()


# The longest address SMTP carries (RFC 5321: a 256-octet path minus its angle brackets), and the columns' size.
MAX_EMAIL_LENGTH = 254


def email_too_long(email: str) -> bool:
    """Whether the address, or its canonical form (NFKC can lengthen it), exceeds what can be stored and sent."""
    return len(email) > MAX_EMAIL_LENGTH or len(canonical_email(email)) > MAX_EMAIL_LENGTH
