"""An invitation token never reaches a log line, however its link was percent-encoded and whichever logger,
Django's own included, writes the line."""

import contextlib
import io
import logging

import pytest
from django.utils.log import configure_logging

from invitations.logging import redact
from invitations.tokens import token_issue, token_split


@pytest.mark.parametrize(
    "path",
    [
        "/invitations/accept/{selector}.{verifier}/",
        "/invitations/accept/{selector}%2E{verifier}/",
        "/invitations/accept/{selector}%2e{verifier}",
        "/invitations/accept/%41{selector}%2E{verifier}%3D/",
        "/invitations%2Faccept%2F{selector}.{verifier}%2F",
        "/invitations/%61ccept/{selector}.{verifier}/",
        # Mangled links, answered 404: their token must not reach django.request's "Not Found" line either.
        "/invitations/accept//{selector}.{verifier}/",
        "/invitations/accept/%2F{selector}.{verifier}/",
        "/invitations/accept/%2f{selector}.{verifier}/",
        "/invitations/accept/x/{selector}.{verifier}/",
        "/invitations/accept/?t={selector}.{verifier}",
        "/invitations/accept?t={selector}.{verifier}",
    ],
)
def test_a_token_is_redacted_however_its_path_is_encoded(path):
    token = token_issue()
    line = f'"GET {path.format(selector=token.selector, verifier=token.verifier)}?utm=x HTTP/1.1" 302 0'
    redacted = redact(line)
    assert token.verifier not in redacted and token.selector not in redacted
    assert "[redacted]" in redacted and redacted.startswith('"GET /invitations') and "HTTP/1.1" in redacted


def test_a_token_in_the_query_is_redacted():
    token = token_issue()
    line = f'"GET /invitations/accept/?utm=mail&t={token.selector}.{token.verifier} HTTP/1.1" 404 0'
    assert redact(line) == '"GET /invitations/accept/?[redacted] HTTP/1.1" 404 0'


def test_a_token_with_a_trailing_newline_is_not_well_formed():
    token = token_issue()
    assert token_split(token.value) == (token.selector, token.verifier)
    assert token_split(token.value + "\n") is None
    assert token_split(token.value + "%0A") is None


def test_the_page_without_a_token_is_logged_as_is():
    line = '"POST /invitations/accept/ HTTP/1.1" 200 0'
    assert redact(line) == line


def test_every_configured_logger_redacts_a_percent_encoded_token(settings):
    token = token_issue()
    line = f'"GET /invitations/accept/{token.selector}%2E{token.verifier}/ HTTP/1.1" 404 0'
    names = ["django", "django.request", "django.security.DisallowedHost", "django.server", "invitations"]
    output = io.StringIO()
    settings.DEBUG = True  # Django's own console handler on "django" prints only then
    try:
        # Logging set up as django.setup() does, with every stream handler writing to `output`.
        with contextlib.redirect_stderr(output):
            configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
            for name in names:
                logging.getLogger(name).error("%s", line)
    finally:
        configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    logged = output.getvalue()
    assert token.verifier not in logged
    assert logged.count("/invitations/accept/[redacted]/") == len(names), logged


@pytest.mark.parametrize("path", ["/invitations/accept//{token}/", "/invitations/accept/%2F{token}/"])
def test_the_not_found_line_of_a_mangled_link_is_redacted(settings, client, path):
    """django.request logs the decoded path of a 404: /invitations/accept/%2F<token>/ as .../accept//<token>/."""
    token = token_issue()
    output = io.StringIO()
    try:
        with contextlib.redirect_stderr(output):
            configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
            response = client.get(path.format(token=token.value))
    finally:
        configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    assert response.status_code == 404
    logged = output.getvalue()
    assert "Not Found: /invitations/accept/" in logged, logged
    assert token.verifier not in logged and token.selector not in logged, logged
