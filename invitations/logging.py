import logging
import re


def _as_requested(path: str) -> str:
    """A regex for `path` written plainly or with any character percent-encoded: servers decode the path
    before Django resolves it, so /invitations%2Faccept%2F<token>/ reaches the view too."""
    return "".join(f"(?:{re.escape(c)}|%{ord(c):02x})" for c in path)


# Invitation links carry the token in the path until the view moves it into a signed cookie; access logs
# (runserver, gunicorn, django.request) would otherwise record it. Whatever follows the prefix, up to the
# next path or query separator, whitespace or quote, is taken for a token: the resolver accepts percent
# escapes in it (%2E for the dot) that a pattern of token characters would let through.
_TOKEN_IN_PATH = re.compile(
    rf"({_as_requested('/invitations/accept/')}|{_as_requested('/invitations/i/')})[^/?\s\"']+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    return _TOKEN_IN_PATH.sub(r"\1[redacted]", text)


class RedactInvitationTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
