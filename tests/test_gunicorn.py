"""The production server's access log never shows an invitation token."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_the_access_log_redacts_invitation_tokens():
    port = free_port()
    token = "Zk3selector0000.s3cretVerifierThatMustNotBeLogged"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "a4c/gunicorn.conf.py", "a4c.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(
                    f"http://127.0.0.1:{port}/invitations/accept/{token}/",
                    headers={"Referer": f"https://mail.example.test/?u=/invitations/accept/{token}/"},
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "/invitations/accept/[redacted]" in output
    assert "s3cretVerifier" not in output
