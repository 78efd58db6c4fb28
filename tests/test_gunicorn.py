"""The production server's access log never shows an invitation token."""

import os

import httpx

from tests.support.servers import gunicorn


def test_the_access_log_redacts_invitation_tokens():
    token = "Zk3selector0000.s3cretVerifierThatMustNotBeLogged"
    with gunicorn({**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}) as server:
        httpx.get(
            f"{server.url}/invitations/accept/{token}/",
            headers={"Referer": f"https://mail.example.test/?u=/invitations/accept/{token}/"},
        )
    assert "/invitations/accept/[redacted]" in server.output
    assert "s3cretVerifier" not in server.output
