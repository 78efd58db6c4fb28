"""Settings come from the environment; production refuses to start without its secrets."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "a4c.settings",
    "DJANGO_SECRET_KEY": "pr0duction-like-" + "k3y-with-enough-entropy-" * 3,
    "DJANGO_ALLOWED_HOSTS": "onboarding.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/a4c",
    "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587",
    "INVITATION_BASE_URL": "https://onboarding.example.com",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "EMAIL_", "INVITATION_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_a_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_missing_production_secret_stops_the_process_with_its_name():
    for missing in ("DJANGO_SECRET_KEY", "DATABASE_URL", "EMAIL_URL", "INVITATION_BASE_URL"):
        env = {k: v for k, v in PRODUCTION.items() if k != missing}
        result = manage("check", env=env)
        assert result.returncode != 0
        assert f"Set the {missing} environment variable" in result.stderr


def test_debug_mode_needs_only_a_secret_key(tmp_path):
    result = manage(
        "migrate",
        "--no-input",
        "-v",
        "0",
        env={
            "DJANGO_SETTINGS_MODULE": "a4c.settings",
            "DJANGO_SECRET_KEY": "dev",
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.sqlite3'}",
        },
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dev.sqlite3").exists()


@pytest.mark.django_db
def test_postgresql_connections_have_a_connect_and_a_statement_timeout(settings):
    from django.db import connection

    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["connect_timeout"] == 5
    assert (options["server_side_binding"], options["prepare_threshold"]) == (True, 5)
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("30s",)


def test_database_timeouts_come_from_the_environment_and_keep_the_urls_own_options():
    def database_options(**env: str) -> dict:
        show = (
            "import json; from django.conf import settings; print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
        )
        result = manage("shell", "-v", "0", "-c", show, env={**PRODUCTION, **env})
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    url = PRODUCTION["DATABASE_URL"] + "?options=-c%20work_mem%3D8MB"
    assert database_options(DATABASE_URL=url, DATABASE_CONNECT_TIMEOUT="3", DATABASE_STATEMENT_TIMEOUT="2.5") == {
        "server_side_binding": True,
        "prepare_threshold": 5,
        "connect_timeout": 3,
        "options": "-c statement_timeout=2500 -c work_mem=8MB",
    }
    assert "options" not in database_options(DATABASE_STATEMENT_TIMEOUT="0")
