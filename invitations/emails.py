"""The one canonical form of an email address, used in every comparison (uniqueness, matching an account).

NFKC folds look-alike Unicode forms; the whole address is lowercased because no mail system we deliver to
treats local parts case-sensitively, and treating them so would let one person hold two invitations.
Dots and +tags are kept: providers disagree on them, so folding them could merge two different people.
"""

import unicodedata


def canonical_email(email: str) -> str:
    return unicodedata.normalize("NFKC", email).strip().lower()
