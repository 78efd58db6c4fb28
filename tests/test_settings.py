"""Settings come from the environment; production refuses to start without its secrets."""

import os
import subprocess
import sys
from pathlib import Path

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
