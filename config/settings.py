"""Settings for the case tracker, read from the environment with embedded local defaults.

Production is the default: DJANGO_DEBUG is off unless set, and then SECRET_KEY, DATABASE_URL,
CELERY_BROKER_URL and ALLOWED_HOSTS must be given, or start-up fails. `make run` turns
DJANGO_DEBUG on, and then nothing else needs to be set: SQLite and a file-system Celery broker
under ./var.
"""

import datetime
from pathlib import Path

import environ

from core.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env")
# Local state of the embedded defaults: the SQLite file, the file-system broker, the demo login.
VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))

# Off unless turned on: a production start that forgets the variable must not serve debug pages.
DEBUG = env.bool("DJANGO_DEBUG", default=False)

# What a setting falls back to when its variable is unset: a value, or NOTSET for "required".
_default_database: str | environ.NoValue
_default_broker: str | environ.NoValue
if DEBUG:
    SECRET_KEY = env("SECRET_KEY", default="local-development-only-not-secret")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
    _default_database = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
    _default_broker = "filesystem://"
else:
    # No defaults: a production start without these fails loudly.
    SECRET_KEY = env("SECRET_KEY")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    _default_database = env.NOTSET
    _default_broker = env.NOTSET

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.TrackerAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "simple_history",
    "django_celery_beat",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pgtrigger",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "core",
    "cases",
    "tracker",
]

MIDDLEWARE = [
    # First, so that every record logged while a request is handled carries its id (core.logs).
    "core.logs.RequestContextMiddleware",
    # A load balancer's probe is answered before the host check (it calls by the machine's address,
    # not a name in ALLOWED_HOSTS) and before sessions and the rest (core.health).
    "core.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The interface in the language chosen with the switch in the admin's header (kept in a cookie),
    # else the browser's Accept-Language, else English.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Which second factor, if any, verified this session (request.user.is_verified()).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.NoStoreMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it turns a refused login into the lockout response.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out username and address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
if not DEBUG:
    # Each web process serves the static files collected into its image (the admin's styles and
    # scripts, the API's schema pages): any number of them, on any number of machines, behind any
    # proxy, with nothing shared. Locally runserver serves them.
    MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                      "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=_default_database)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg 3 with its connection pool; persistent connections must then stay off.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Each connection is checked as the pool hands it out: one broken by a database restart is
    # replaced instead of failing the request or task that got it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # The API's key check and its page of cases are statements prepared on each database connection,
    # their plans made once (`core.prepared`); Django's own statements bind on the client and are never
    # prepared. Off where a pooler in front of PostgreSQL cannot keep prepared statements (PgBouncer
    # in transaction mode before 1.21, or without `max_prepared_statements`): Django's default.
    API_PREPARED_STATEMENTS = env.bool("API_PREPARED_STATEMENTS", default=True)
    if API_PREPARED_STATEMENTS:
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
    if env.bool("DATABASE_POOL", default=True):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN", default=1),
            "max_size": env.int("DATABASE_POOL_MAX", default=10),
        }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # The web server, the worker and beat share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    # The sync order's index carries the child's key beside its own (PostgreSQL's INCLUDE), which
    # SQLite leaves out of the index it makes: known, and of no consequence for `make run`.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("uk", "Українська"), ("en", "English")]
# The project's catalogues (make messages), compiled and committed so that running needs no gettext.
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates as written in Ukraine (27.11.2026) in both languages, and 24-hour times (config/formats/).
FORMAT_MODULE_PATH = ["config.formats"]
LANGUAGE_COOKIE_NAME = "tracker_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = env("TIME_ZONE", default="Europe/Kyiv")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "media"))

# The shared cache holds the API's rate-limit counters, so that limits hold across processes.
if env("CACHE_URL", default="").startswith("redis://"):
    # While Redis is unreachable each process counts in its own memory (core.cache says why).
    CACHES = {"default": {"BACKEND": "core.cache.ResilientRedisCache", "LOCATION": env("CACHE_URL")}}
else:
    # On disk rather than in memory, so that the web process sees what the worker writes (an
    # import's progress) and rate limits hold across the local processes too.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tracker.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tracker.api.permissions.PartnerOrStaff"],
    "DEFAULT_THROTTLE_CLASSES": ["tracker.api.throttling.ApiRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "tracker.api.pagination.StableCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["tracker.api.filters.FilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tracker.api.errors.problem_exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON bodies only, so that the schema promises one format and every client sends it.
    "DEFAULT_PARSER_CLASSES": ["tracker.api.parsers.BoundedJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# Requests per API key (or signed-in case worker), and per client address for requests that fail to
# authenticate (no key, or a wrong, revoked or expired one): `N/second|minute|hour|day`.
API_RATE_LIMIT = env("API_RATE_LIMIT", default="1200/minute")
API_UNAUTHENTICATED_RATE_LIMIT = env("API_UNAUTHENTICATED_RATE_LIMIT", default="60/minute")
# The largest request body the API reads (bytes): a reply of 20,000 outcomes fits well within it.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=8 * 1024 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "Case tracker: partner API",
    "DESCRIPTION": (
        "For partner organisations: the cases and handover lists shared with you, replies, and webhooks. "
        "Authenticate with `Authorization: Bearer <your API key>`. Request bodies are JSON. Every error is an "
        "RFC 9457 problem details object whose `type` is its page in the error catalogue (/api/v1/problems/); "
        "an unknown query parameter or body field, or a bad value, is refused with 400 naming it. Every answer "
        "carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`; a 429 carries `Retry-After`. "
        "A case's `ETag` goes in `If-Match` to update it and in `If-None-Match` for a 304 while unchanged. "
        "A POST with an `Idempotency-Key` sent again creates nothing and answers the first result."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tracker.api.schema.document_the_contract",
    ],
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "cases.models.CaseStatus",
        "ListStatusEnum": "tracker.models.ListStatus",
        "DeliveryStateEnum": "tracker.models.WebhookDelivery.State",
    },
}
# Webhook deliveries: how often to try, how long to wait between tries, how long one may take.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=DEBUG)
# Deliveries to loopback, private and link-local addresses (a partner's receiver on this machine while
# developing); refused in production, where such a target would be a door into our own networks.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=DEBUG)
# How many endpoints one organisation may have registered (deleted ones do not count).
WEBHOOK_MAX_ENDPOINTS_PER_ORGANISATION = env.int("WEBHOOK_MAX_ENDPOINTS_PER_ORGANISATION", default=5)
# After a secret is rotated, the old one signs too for this long, so receivers can switch over.
WEBHOOK_SECRET_OVERLAP_HOURS = env.float("WEBHOOK_SECRET_OVERLAP_HOURS", default=24.0)

# Email: console locally, SMTP when EMAIL_URL is set (smtp+tls://user:pass@host:587).
if "EMAIL_URL" in env:
    vars().update(env.email("EMAIL_URL"))
else:
    EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="case-tracker@localhost")

# Sessions last a working day: a case worker signs in in the morning and is asked again the next.
SESSION_COOKIE_AGE = round(env.float("SESSION_HOURS", default=9) * 60 * 60)
SESSION_COOKIE_HTTPONLY = True
# No script of ours reads the CSRF cookie (the admin's forms and the browsable API carry the token
# in the page), so scripts injected into a page cannot either.
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # A year of HTTPS-only once a browser has seen the site; SECURE_HSTS_SECONDS=300 while trying it out.
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 60 * 60)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    # Behind a proxy that ends TLS, the request reaches Django over plain HTTP; the proxy says it came
    # over HTTPS in this header (value "https"). Only trust it when the proxy sets it and drops any a
    # client sent; set it empty when Django faces the clients itself.
    _proxy_ssl_header = env("SECURE_PROXY_SSL_HEADER", default="X-Forwarded-Proto")
    if _proxy_ssl_header:
        SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

# Content Security Policy: scripts, styles, images and fonts from this site only, nothing inline,
# no plugins, no framing. The API documentation pages loosen it for themselves (tracker/api/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}
# Responses under these paths carry children's data (the admin, its exports, the API): never cached.
NO_STORE_PATH_PREFIXES = ("/admin/", "/api/")

# Failed logins (django-axes): after TRACKER_LOGIN_FAILURES wrong passwords for one username from one
# address, that pair is refused until TRACKER_LOGIN_COOLOFF_MINUTES pass. Locking the pair, not the
# username alone, keeps an attacker from locking every case worker out by guessing at their names.
AXES_FAILURE_LIMIT = env.int("TRACKER_LOGIN_FAILURES", default=5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.float("TRACKER_LOGIN_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# What a failed attempt records of the form, masked: a recovery code typed beside a wrong password
# would otherwise sit readable in the attempts log.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp_token"]
# Lockouts are still logged; this only drops the start-up banner from every command's output.
AXES_VERBOSE = False
# Behind proxies every request comes from the last proxy's address: read the client's from
# X-Forwarded-For instead, counting TRUSTED_PROXY_COUNT proxies back from the right.
AXES_CLIENT_IP_CALLABLE = "core.middleware.client_ip"
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Second factor (django-otp): the admin and the API's signed-in use need a verified authenticator
# app or recovery code. On by default in production; off under DJANGO_DEBUG so `make run` needs no phone.
TRACKER_REQUIRE_2FA = env.bool("TRACKER_REQUIRE_2FA", default=not DEBUG)
# A staff user who has no device yet may enrol one after the password alone (and only then); off:
# devices are made by `manage.py create_totp_device <username>` only.
TRACKER_2FA_SELF_ENROL = env.bool("TRACKER_2FA_SELF_ENROL", default=True)
# The issuer shown in the authenticator app beside the username.
OTP_TOTP_ISSUER = env("TRACKER_2FA_ISSUER", default="Case tracker")
# Device secrets and recovery codes are never shown in the admin's device pages, even to superusers.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Celery: JSON only, late acks with prefetch 1 so a killed worker's task is redelivered.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=_default_broker)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env("CELERY_BROKER_DIR", default=str(VAR_DIR / "broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A task taken by a worker that died comes back after the visibility timeout: just longer than
    # the longest a task may run (the hard time limit below), not Redis's default of an hour.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_TASK_TIME_LIMIT + 60,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
# A write whose job cannot be queued must not wait long for the broker: it says so and a periodic
# job queues the work later (core.tasks).
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="tracker")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery closes Django's connections, and with prefork its connection pool, before and after every
# task: a new database session per task. Reused for this many tasks instead, then renewed.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_TIMEZONE = TIME_ZONE
# One leader among any number of beats; the schedule below is installed only where missing, so edits
# made in the admin stay (core.beat).
CELERY_BEAT_SCHEDULER = "core.beat:SingleLeaderScheduler"
# Installed into django-celery-beat's tables at beat start where missing; editable in the admin afterwards.
CELERY_BEAT_SCHEDULE = {
    "deadline-sweep-hourly": {
        "task": "tracker.tasks.sweep_deadlines",
        "schedule": 60 * 60,
    },
    "flag-digest-daily": {
        "task": "tracker.tasks.send_flag_digests",
        "schedule": 24 * 60 * 60,
    },
    "webhooks-safety-net": {
        "task": "tracker.tasks.redeliver_stale_webhooks",
        "schedule": 5 * 60,
    },
    "imports-safety-net": {
        "task": "tracker.tasks.resume_stale_imports",
        "schedule": 5 * 60,
    },
    "import-files-retention": {
        "task": "tracker.tasks.expire_import_files",
        "schedule": 24 * 60 * 60,
    },
}

# The deadline rules: how far past due a flag escalates, and how early a reminder goes out.
TRACKER_ESCALATION_DAYS = env.list("TRACKER_ESCALATION_DAYS", cast=int, default=[14, 30])
TRACKER_REMINDER_DAYS = env.int("TRACKER_REMINDER_DAYS", default=7)
# Imports of lists and replies: files with more rows than this are checked and written by a Celery job.
TRACKER_IMPORT_INLINE_ROWS = env.int("TRACKER_IMPORT_INLINE_ROWS", default=500)
# Uploaded files: the largest taken (bytes) and the most rows read; files are deleted this many days
# after their import ended, or after it was left unconfirmed (the batch's summary and errors stay).
TRACKER_IMPORT_MAX_BYTES = env.int("TRACKER_IMPORT_MAX_BYTES", default=10 * 2**20)
# The largest file a case worker may attach to a note (a letter's scan, a photo).
TRACKER_NOTE_ATTACHMENT_MAX_BYTES = env.int("TRACKER_NOTE_ATTACHMENT_MAX_BYTES", default=20 * 2**20)
TRACKER_IMPORT_MAX_ROWS = env.int("TRACKER_IMPORT_MAX_ROWS", default=50_000)
TRACKER_IMPORT_FILE_RETENTION_DAYS = env.int("TRACKER_IMPORT_FILE_RETENTION_DAYS", default=30)
# An import waiting this long for its job (lost with a worker, or never queued) is queued again.
TRACKER_IMPORT_STALE_MINUTES = env.int("TRACKER_IMPORT_STALE_MINUTES", default=10)
# Retention: a child whose every case closed this many days ago is anonymised by
# `manage.py anonymise_closed_cases` (docs/retention.md); default five years.
TRACKER_RETENTION_DAYS_AFTER_CLOSING = env.int("TRACKER_RETENTION_DAYS_AFTER_CLOSING", default=5 * 365)
# Who hears of flags on cases that have no assignee yet.
TRACKER_UNASSIGNED_DIGEST_TO = env.list("TRACKER_UNASSIGNED_DIGEST_TO", default=[])

# /health/ready: how long it waits for each of its checks (the database, the broker).
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=1.0)

# Logs: JSON lines on stdout in production, text on stderr locally (core.logs). The workers and beat
# log through the same configuration: config.celery keeps Celery from setting up its own.
LOG_FORMAT = env("LOG_FORMAT", default="text" if DEBUG else "json")
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
