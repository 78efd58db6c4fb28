"""Settings for the test suite: the real settings module, fed a test environment, with durations shortened."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-not-a-secret")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/a4c")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("EMAIL_URL", "memorymail://")
os.environ.setdefault("INVITATION_BASE_URL", "https://onboarding.example.test")
os.environ.setdefault("DNS_PROVIDER", "local")
os.environ.setdefault("TEMPORAL_WORKER_MODULES", "tests.temporal_bridge.sample_temporal")

from a4c.settings import *  # noqa: E402,F403
from a4c.settings import VAR_DIR  # noqa: E402

# Separate test databases for test sessions that run side by side on one machine (A4C_TEST_ISOLATION=name).
_ISOLATION = os.environ.get("A4C_TEST_ISOLATION", "")
_SUFFIX = f"_{_ISOLATION}" if _ISOLATION else ""
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}{_SUFFIX}"}  # noqa: F405

# The test client speaks plain HTTP.
SECURE_SSL_REDIRECT = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A second database for the event-store contract tests, which run on both backends.
DATABASES["sqlite"] = {  # noqa: F405
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": str(VAR_DIR / f"contract{_SUFFIX}.sqlite3"),
    "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"},
    "TEST": {"NAME": str(VAR_DIR / f"test-contract{_SUFFIX}.sqlite3")},
}

# The default database once more, with psycopg's server-side binding and prepared statements, for the event-store
# contract tests of the append's fast path as it runs with those DATABASES OPTIONS.
DATABASES["prepared"] = {  # noqa: F405
    **DATABASES["default"],  # noqa: F405
    "OPTIONS": {**DATABASES["default"].get("OPTIONS", {}), "server_side_binding": True, "prepare_threshold": 5},  # noqa: F405
    "TEST": {"NAME": f"test_{DATABASES['default']['NAME']}_prepared{_SUFFIX}"},  # noqa: F405
}

# Workflow durations, shortened.
BOOTSTRAP_DNS_PROPAGATION_WAIT = 1.0
BOOTSTRAP_DNS_VERIFY_TIMEOUT = 6.0
BOOTSTRAP_RETRY_INITIAL_INTERVAL = 0.2
BOOTSTRAP_RETRY_MAX_INTERVAL = 1.0
BOOTSTRAP_ACTIVITY_TIMEOUT = 30.0
BOOTSTRAP_EMAIL_RESULTS_TIMEOUT = 60.0
BOOTSTRAP_ACTIVITY_RETRY_INITIAL_INTERVAL = 0.1
BOOTSTRAP_ACTIVITY_MAX_ATTEMPTS = 5
INVITATION_EMAIL_RETRY_BACKOFF = 0.2
INVITATION_EMAIL_RETRY_BACKOFF_MAX = 1.0
