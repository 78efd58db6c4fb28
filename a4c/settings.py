"""Settings for A4C Onboarding, read from the environment in this one place.

Production secrets have no default: a missing one stops the process at start with django-environ's
"Set the X environment variable" message. Development defaults apply only when DJANGO_DEBUG is on.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

# --- Core -------------------------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "eventstore",
    "temporal_bridge",
    "organizations",
    "invitations",
    "onboarding",
]

MIDDLEWARE = [
    # First: probes come over plain HTTP with the pod's address as Host (see a4c/health.py).
    "a4c.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "a4c.urls"
WSGI_APPLICATION = "a4c.wsgi.application"
ASGI_APPLICATION = "a4c.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------------------
# SQLite only as the zero-install development default; production must name its database.
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL",
        **({"default": f"sqlite:///{VAR_DIR / 'a4c.sqlite3'}"} if DEBUG else {}),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock at BEGIN, so appends serialise instead of failing on upgrade.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # psycopg prepares a statement run this often on a connection (the event append's, above all). Off behind a
        # transaction-mode pooler that cannot keep prepared statements (pgbouncer before 1.21).
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Bounds on connecting and on one statement: without them a database that does not answer holds requests,
    # /readyz's included. DATABASE_URL's own connect_timeout wins.
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    _pg_options.setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
    _statement_ms = round(env.float("DATABASE_STATEMENT_TIMEOUT", default=30.0) * 1000)
    if _statement_ms:
        # First, so that a `-c statement_timeout` in DATABASE_URL's own `options` still wins.
        _pg_options["options"] = f"-c statement_timeout={_statement_ms} {_pg_options.get('options', '')}".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Caches (rate limits need a cache shared by every web process) ---------------------------------------
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# --- Auth, i18n, static -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=VAR_DIR / "static")

# --- Security (production defaults; `manage.py check --deploy` passes with DJANGO_DEBUG off) ---------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("DJANGO_BEHIND_PROXY", False) else None
# Reverse proxies in front that each append the address they saw to X-Forwarded-For. The client address (for rate
# limits) is the entry that many from the right: the entries to its left are the client's to forge.
PROXY_HOPS = env.int("DJANGO_PROXY_HOPS", default=0)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The debug page and error reports also hide the settings that hold credentials inside URLs (a4c/debug.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "a4c.debug.SettingsRedactingFilter"

# --- Email ------------------------------------------------------------------------------------------------
# EMAIL_URL (smtp://user:password@host:587/?tls=True, consolemail://, filemail:///path) parsed by
# django-environ, then expressed as Django 6.1's MAILERS.
_email = env.email_url("EMAIL_URL", **({"default": "consolemail://"} if DEBUG else {}))
_MAILER_OPTIONS = {
    "EMAIL_HOST": "host",
    "EMAIL_PORT": "port",
    "EMAIL_HOST_USER": "username",
    "EMAIL_HOST_PASSWORD": "password",
    "EMAIL_USE_TLS": "use_tls",
    "EMAIL_USE_SSL": "use_ssl",
    "EMAIL_FILE_PATH": "file_path",
}
MAILERS = {
    "default": {
        "BACKEND": _email["EMAIL_BACKEND"],
        "OPTIONS": {option: _email[key] for key, option in _MAILER_OPTIONS.items() if _email.get(key)}
        | ({"timeout": env.int("EMAIL_TIMEOUT", default=10)} if "smtp" in _email["EMAIL_BACKEND"] else {}),
    }
}
# How long a sent command or message may wait for the relay's answer (EMAIL_TIMEOUT bounds connecting). The
# delivery lease is derived from both (invitations.services.delivery_lease), so it outlasts any send.
EMAIL_REPLY_TIMEOUT = env.int("EMAIL_REPLY_TIMEOUT", default=60)
if "file_path" in MAILERS["default"]["OPTIONS"]:
    # django-environ drops the leading slash of filemail:///var/mail: such paths are relative to the project.
    MAILERS["default"]["OPTIONS"]["file_path"] = str(BASE_DIR / MAILERS["default"]["OPTIONS"]["file_path"])
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="A4C Onboarding <no-reply@localhost>")

# --- REST API ---------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "a4c.authentication.RateLimitedBasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # Failed logins per client address (API Basic and the admin's login page); past it, no password is tried
    # until the window moves on (a4c/authentication.py).
    "DEFAULT_THROTTLE_RATES": {"failed_logins": env.str("LOGIN_FAILURE_RATE", default="20/min")},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "A4C Onboarding API",
    "DESCRIPTION": "Start and follow organization bootstraps.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema describes the admin API: for staff only. The docs' scripts come from this server (the sidecar
    # package), not from a CDN's moving "latest" on the admin's origin.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery -----------------------------------------------------------------------------------------------
# `filesystem://` is the embedded broker the quickstart falls back to when no Redis answers.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=env.str("REDIS_URL", default="redis://127.0.0.1:6379/0"))
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fix-up closes the database connection around every task unless told to reuse it: a new
# PostgreSQL connection per email cost more than the email. Reused for this many tasks; a4c/celery.py applies
# Django's own CONN_MAX_AGE and health checks around each task, as around a web request.
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery-broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }

# --- Temporal ---------------------------------------------------------------------------------------------
TEMPORAL_ADDRESS = env.str("TEMPORAL_ADDRESS", default="127.0.0.1:7233")
TEMPORAL_NAMESPACE = env.str("TEMPORAL_NAMESPACE", default="default")
TEMPORAL_API_KEY = env.str("TEMPORAL_API_KEY", default="")
TEMPORAL_TLS = env.bool("TEMPORAL_TLS", default=bool(TEMPORAL_API_KEY))
TEMPORAL_TLS_CLIENT_CERT = env.str("TEMPORAL_TLS_CLIENT_CERT", default="")
TEMPORAL_TLS_CLIENT_KEY = env.str("TEMPORAL_TLS_CLIENT_KEY", default="")
TEMPORAL_UI_URL = env.str("TEMPORAL_UI_URL", default="http://127.0.0.1:8233")
# Prepended to every task queue name; tests give each test its own queues this way.
TEMPORAL_TASK_QUEUE_PREFIX = env.str("TEMPORAL_TASK_QUEUE_PREFIX", default="")
TEMPORAL_MAX_CONCURRENT_ACTIVITIES = env.int("TEMPORAL_MAX_CONCURRENT_ACTIVITIES", default=16)
TEMPORAL_MAX_CACHED_WORKFLOWS = env.int("TEMPORAL_MAX_CACHED_WORKFLOWS", default=500)
TEMPORAL_MAX_CONCURRENT_WORKFLOW_TASKS = env.int("TEMPORAL_MAX_CONCURRENT_WORKFLOW_TASKS", default=16)
TEMPORAL_WORKER_SHUTDOWN_TIMEOUT = env.float("TEMPORAL_WORKER_SHUTDOWN_TIMEOUT", default=30.0)
TEMPORAL_CLIENT_TIMEOUT = env.float("TEMPORAL_CLIENT_TIMEOUT", default=10.0)
# Bearer token Prometheus presents to scrape the web side's /metrics; empty: the endpoint is off (404).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# host:port where `run_temporal_worker` serves Prometheus metrics (the SDK's and the bootstrap's); empty: none.
TEMPORAL_METRICS_ADDRESS = env.str("TEMPORAL_METRICS_ADDRESS", default="")
# Modules to import for queue registrations besides each app's `temporal.py`.
TEMPORAL_WORKER_MODULES = env.list("TEMPORAL_WORKER_MODULES", default=[])

# --- Organization bootstrap (durations in seconds; tests shorten them) -------------------------------------
ENABLE_ORG_BOOTSTRAP = env.bool("ENABLE_ORG_BOOTSTRAP", default=True)
BOOTSTRAP_DNS_PROPAGATION_WAIT = env.float("BOOTSTRAP_DNS_PROPAGATION_WAIT", default=300.0)
BOOTSTRAP_DNS_CONFIGURE_MAX_ATTEMPTS = env.int("BOOTSTRAP_DNS_CONFIGURE_MAX_ATTEMPTS", default=3)
BOOTSTRAP_DNS_VERIFY_TIMEOUT = env.float("BOOTSTRAP_DNS_VERIFY_TIMEOUT", default=2100.0)
BOOTSTRAP_RETRY_INITIAL_INTERVAL = env.float("BOOTSTRAP_RETRY_INITIAL_INTERVAL", default=10.0)
BOOTSTRAP_RETRY_MAX_INTERVAL = env.float("BOOTSTRAP_RETRY_MAX_INTERVAL", default=300.0)
BOOTSTRAP_ACTIVITY_TIMEOUT = env.float("BOOTSTRAP_ACTIVITY_TIMEOUT", default=600.0)
BOOTSTRAP_EMAIL_RESULTS_TIMEOUT = env.float("BOOTSTRAP_EMAIL_RESULTS_TIMEOUT", default=3600.0)
# 2,000 invitees stay under Temporal's 2 MB payload and 10,000 signals-per-run limits with room to spare.
BOOTSTRAP_MAX_INVITEES = env.int("BOOTSTRAP_MAX_INVITEES", default=2000)
BOOTSTRAP_ACTIVITY_RETRY_INITIAL_INTERVAL = env.float("BOOTSTRAP_ACTIVITY_RETRY_INITIAL_INTERVAL", default=1.0)
# 10 attempts ride out about 2.5 minutes of outage (backoff 1 s doubling, capped at 30 s) before a step fails.
BOOTSTRAP_ACTIVITY_MAX_ATTEMPTS = env.int("BOOTSTRAP_ACTIVITY_MAX_ATTEMPTS", default=10)
# How long one compensation step (DNS removal, revoking invitations) keeps retrying before it is recorded as
# failed and the next one runs; marking the organization failed retries until it succeeds.
BOOTSTRAP_COMPENSATION_STEP_TIMEOUT = env.float("BOOTSTRAP_COMPENSATION_STEP_TIMEOUT", default=900.0)
RESERVED_SUBDOMAINS = env.list(
    "RESERVED_SUBDOMAINS",
    default=[
        "www",
        "api",
        "admin",
        "mail",
        "smtp",
        "imap",
        "pop",
        "ftp",
        "ns1",
        "ns2",
        "dns",
        "app",
        "apps",
        "static",
        "assets",
        "cdn",
        "auth",
        "login",
        "sso",
        "status",
        "support",
        "help",
        "docs",
        "dev",
        "staging",
        "test",
        "internal",
        "temporal",
        "webmail",
        "autodiscover",
        "root",
        "a4c",
    ],
)

# --- DNS --------------------------------------------------------------------------------------------------
DNS_PROVIDER = env.str("DNS_PROVIDER", default="local")  # local | cloudflare | powerdns
DNS_BASE_DOMAIN = env.str("DNS_BASE_DOMAIN", default="a4c.localhost")
DNS_TARGET = env.str("DNS_TARGET", default=f"app.{DNS_BASE_DOMAIN}")
DNS_RECORD_TTL = env.int("DNS_RECORD_TTL", default=1)  # 1 = "automatic" on Cloudflare
DNS_PROXIED = env.bool("DNS_PROXIED", default=True)
# Where `manage.py run_local_dns` answers. Not 5353: mDNS responders (avahi, macOS) hold that port on every address.
LOCAL_DNS_PORT = env.int("LOCAL_DNS_PORT", default=15353)
# The local provider's records exist only in its own server, so only that server can verify them.
_LOCAL_DNS = DNS_PROVIDER == "local"
DNS_VERIFY_RESOLVERS = env.list(
    "DNS_VERIFY_RESOLVERS", default=[f"127.0.0.1:{LOCAL_DNS_PORT}"] if _LOCAL_DNS else ["1.1.1.1", "8.8.8.8", "9.9.9.9"]
)
DNS_VERIFY_QUORUM = env.int("DNS_VERIFY_QUORUM", default=1 if _LOCAL_DNS else 2)
DNS_VERIFY_TIMEOUT = env.float("DNS_VERIFY_TIMEOUT", default=5.0)
CLOUDFLARE_API_TOKEN = env.str("CLOUDFLARE_API_TOKEN", default="")
CLOUDFLARE_ZONE_NAME = env.str("CLOUDFLARE_ZONE_NAME", default=DNS_BASE_DOMAIN)
CLOUDFLARE_BASE_URL = env.str("CLOUDFLARE_BASE_URL", default="")  # empty: the SDK's default
POWERDNS_API_URL = env.str("POWERDNS_API_URL", default="http://127.0.0.1:8081")
POWERDNS_API_KEY = env.str("POWERDNS_API_KEY", default="")
POWERDNS_SERVER_ID = env.str("POWERDNS_SERVER_ID", default="localhost")
POWERDNS_ZONE = env.str("POWERDNS_ZONE", default=DNS_BASE_DOMAIN)

# --- Invitations ------------------------------------------------------------------------------------------
# Links are built from this, never from the request's Host header.
INVITATION_BASE_URL = env.str("INVITATION_BASE_URL", **({"default": "http://127.0.0.1:8000"} if DEBUG else {}))
# Where the invitee's welcome page leads on; {domain} and {subdomain} are the organization's, empty for no link.
INVITATION_WELCOME_URL = env.str("INVITATION_WELCOME_URL", default="https://{domain}/")
INVITATION_TTL = env.float("INVITATION_TTL", default=7 * 24 * 3600.0)
INVITATION_REMINDER_DELAY = env.float("INVITATION_REMINDER_DELAY", default=3 * 24 * 3600.0)
INVITATION_EMAIL_MAX_RETRIES = env.int("INVITATION_EMAIL_MAX_RETRIES", default=5)
INVITATION_EMAIL_RETRY_BACKOFF = env.float("INVITATION_EMAIL_RETRY_BACKOFF", default=10.0)
INVITATION_EMAIL_RETRY_BACKOFF_MAX = env.float("INVITATION_EMAIL_RETRY_BACKOFF_MAX", default=600.0)
INVITATION_ACCEPT_RATE_LIMIT = env.int("INVITATION_ACCEPT_RATE_LIMIT", default=20)  # attempts per window
INVITATION_ACCEPT_RATE_WINDOW = env.int("INVITATION_ACCEPT_RATE_WINDOW", default=60)
# How long a web process reuses what it read (and rendered) for an invitation's landing page; POSTs always
# read afresh. 0 turns the micro-cache off.
INVITATION_LANDING_CACHE_TTL = env.float("INVITATION_LANDING_CACHE_TTL", default=2.0)
# A Temporal schedule publishes again the email deliveries left queued this long (their publish after commit
# failed) or held past their sender's lease, every INVITATION_DELIVERY_SWEEP_INTERVAL seconds.
INVITATION_DELIVERY_SWEEP_INTERVAL = env.float("INVITATION_DELIVERY_SWEEP_INTERVAL", default=300.0)
INVITATION_DELIVERY_STALE_AFTER = env.float("INVITATION_DELIVERY_STALE_AFTER", default=900.0)

# --- Logging ----------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_tokens": {"()": "invitations.logging.RedactInvitationTokens"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_tokens"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Else Django's default handlers (with DEBUG on, an unfiltered console) also print its records,
        # django.security's included, without the token redaction.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.request": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "temporalio": {"level": env.str("TEMPORAL_LOG_LEVEL", default="WARNING")},
    },
}
