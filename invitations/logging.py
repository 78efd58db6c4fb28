import logging
import re


def _as_requested(path: str) -> str:
    """A regex for `path` written plainly or with any character percent-encoded: servers decode the path
    before Django resolves it, so /invitations%2Faccept%2F<token>/ reaches the view too."""
    return "".join(f"(?:{re.escape(c)}|%{ord(c):02x})" for c in path)


# Invitation links carry the token in the path until the view moves it into a signed cookie; access logs
# (runserver, gunicorn, django.request) would otherwise record it. Everything after the prefix up to whitespace or
# a quote is taken for token material, since a mangled link may hold it in any path segment (after an empty one,
# behind %2F) or in the query (?t=<token>): each segment is redacted, and the query whole.
_TOKEN_IN_PATH = re.compile(
    rf"(?P<prefix>(?:{_as_requested('/invitations/accept')}|{_as_requested('/invitations/i')})(?:/|%2f|(?=\?)))"
    r"(?P<path>[^?\s\"']*)(?P<query>\?[^\s\"']*)?",
    re.IGNORECASE,
)
_SEGMENT = re.compile(r"[^/]+")


def _redact_match(match: re.Match) -> str:
    query = "?[redacted]" if match["query"] and match["query"] != "?" else match["query"] or ""
    return match["prefix"] + _SEGMENT.sub("[redacted]", match["path"]) + query


def redact(text: str) -> str:
    return _TOKEN_IN_PATH.sub(_redact_match, text)


class RedactInvitationTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
