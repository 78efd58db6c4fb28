import logging
import re

# Invitation links carry the token in the path until the view moves it into a signed cookie; access logs
# (runserver, gunicorn, django.request) would otherwise record it.
_TOKEN_IN_PATH = re.compile(r"(/invitations/(?:accept|i)/)[A-Za-z0-9_\-.]+")


def redact(text: str) -> str:
    return _TOKEN_IN_PATH.sub(r"\1[redacted]", text)


class RedactInvitationTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
