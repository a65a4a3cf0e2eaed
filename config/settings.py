"""One environment-driven settings file.

With nothing set the product runs *embedded*: SQLite, Celery tasks eager, DEBUG on and a
development secret. ``DATABASE_URL`` switches to PostgreSQL and the deployed profile (DEBUG
off, secret required); ``REDIS_URL`` switches Celery to Redis and adds the Redis cache.
Every variable is listed in ``.env.example``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Strict boolean: only true/false/1/0 (any case) are accepted."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ImproperlyConfigured(f"{name} must be true/false/1/0, got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _required(name: str) -> str:
    hint = f". Generate one with: {GENERATE_SECRET}" if name == "DJANGO_SECRET_KEY" else ""
    raise ImproperlyConfigured(f"{name} must be set when DATABASE_URL is set (deployed mode){hint}")


DEV_SECRET = "dev-only-insecure-secret-do-not-use-in-production-0123456789"  # noqa: S105
# The placeholder of .env.example: a copied .env that still has it is refused like no secret.
PLACEHOLDER_SECRET = "change-me-to-a-long-random-string"  # noqa: S105
GENERATE_SECRET = 'python3 -c "import secrets; print(secrets.token_urlsafe(50))"'

EMBEDDED = not os.environ.get("DATABASE_URL")  # no services configured: dev/test mode
DEBUG = env_bool("DJANGO_DEBUG", default=EMBEDDED)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or (
    DEV_SECRET if EMBEDDED else _required("DJANGO_SECRET_KEY")
)
if not EMBEDDED and SECRET_KEY.strip() == PLACEHOLDER_SECRET:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is still the placeholder of .env.example; set a secret of your own "
        f"when DATABASE_URL is set (deployed mode). Generate one with: {GENERATE_SECRET}"
    )
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if EMBEDDED else []
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "csp",
    "axes",
    "outbox",
    "accounts",
    "surveys",
    "voice",
    "metrics",
    "playbooks",
    "workspace",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "accounts.middleware.ContentSecurityPolicy",  # django-csp, the header built once
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "accounts.middleware.ApiNotFound",  # an unknown path under /api/: JSON 404, DEBUG or not
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.LoginRequired",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a locked-out login into its page
    "accounts.middleware.DatabaseUnavailable",  # a dead database connection: 503, not 500
    "accounts.middleware.FormOnlyAddress",  # a POST-only page opened by GET: a page, not blank
    "accounts.middleware.BookVersionMemo",  # the book's version read once per request
]

# Answers POSTed to the public survey pages skip the layers an anonymous form post does not
# use (config/wsgi.py). Each security layer of MIDDLEWARE is here, in the same order.
SURVEY_ANSWER_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "accounts.middleware.ContentSecurityPolicy",
    "django.middleware.common.CommonMiddleware",  # Content-Length: no chunked reply
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.DatabaseUnavailable",
]

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
                "accounts.context_processors.roles",
                "workspace.context_processors.runtime",
            ],
        },
    },
]

if EMBEDDED:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {"timeout": 20},
        }
    }
else:  # psycopg 3 is picked up by the postgresql backend
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["DATABASE_URL"], conn_max_age=60, conn_health_checks=True
        )
    }
    # psycopg prepares a statement from its Nth run on a connection (PostgreSQL plans it
    # once, not on every run). Only config.db.prepared_cursor's statements are concerned:
    # Django's own cursors bind parameters on the client and never prepare. Behind a
    # transaction-mode pooler that does not track prepared statements (PgBouncer before
    # 1.21, or without max_prepared_statements), set DATABASE_PREPARE_THRESHOLD=0: never.
    _prepare_threshold = env_int("DATABASE_PREPARE_THRESHOLD", 5)
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        _prepare_threshold if _prepare_threshold > 0 else None
    )  # the URL's own options (?sslmode=…) stay
    # Dashboards and KPI reads can use a streaming replica (config/db.py); in tests it is
    # the primary itself (a mirror).
    if os.environ.get("DATABASE_REPLICA_URL"):
        DATABASES["replica"] = dj_database_url.parse(
            os.environ["DATABASE_REPLICA_URL"], conn_max_age=60, conn_health_checks=True
        )
        DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["config.db.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins while locked out
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failed sign-ins for one email
# from one address, that pair is locked out for LOGIN_LOCKOUT_MINUTES. Keyed on the pair,
# not the email alone, so nobody can lock a colleague out by guessing wrong on purpose.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False

# Content Security Policy (django-csp): scripts only from our own static files (no inline
# script, no eval, no CDN); inline style attributes are allowed (bar widths, chart sizes),
# since they cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],  # the API docs' search index runs in a worker
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Uploads above this size are streamed to a temporary file rather than held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 20 * 1024 * 1024)

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # django-redis, because it can ignore a Redis outage: pages keep serving with the cache
    # reads missing (rate limits fail open, debounces fall back to "schedule now") instead
    # of answering 500 while Redis is away.
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 1,  # seconds: an outage costs a page 1 s, not 30
                "SOCKET_TIMEOUT": 1,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: without Redis every task runs inline (embedded mode). Even then Celery's eager
# ``apply_async`` takes a producer from the broker pool (only to read its serializer; nothing
# is sent): an empty URL means kombu's AMQP default and a "No hostname was supplied" warning
# on every start, so embedded mode names kombu's in-process transport instead.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
# Publishing gives up quickly when Redis is away; outbox.services.task_enqueue then keeps the
# call in the database and the sweeper sends it when Redis is back.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    # a task taken by a worker that died (acks_late, never acknowledged) goes back to the
    # queue after this many seconds; longer than the longest task (CELERY_TASK_TIME_LIMIT)
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 60 * 60),
}
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # acks_late is declared per task
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # our LOGGING applies in workers
# Separate queues, so a big import or a night's run never holds up a health recompute, an
# email or a survey invitation: docker-compose.yml runs `worker` for celery,ingest (imports,
# the nightly pipeline's steps and health chunks) and `worker-recompute` for
# recompute,notifications (the health within a minute of new data, the survey answers that
# feed it, emails); past one machine, a worker per queue (docs/scaling.md). Exact names win
# over the patterns.
CELERY_TASK_ROUTES = {
    # the night's long-running steps. Its health chunks go to celery too, the queue given
    # where they are sent (metrics.pipeline.NIGHT_HEALTH_QUEUE): the same task sent for an
    # import's accounts (metrics.tasks.account_changed) stays on recompute below
    "metrics.tasks.run_nightly_pipeline": {"queue": "celery"},
    "metrics.tasks.continue_nightly_pipeline": {"queue": "celery"},
    "voice.tasks.refresh_all_voice": {"queue": "celery"},
    "voice.tasks.compute_all_themes": {"queue": "celery"},
    "voice.tasks.compute_themes": {"queue": "celery"},
    "accounts.tasks.*": {"queue": "ingest"},
    "metrics.tasks.*": {"queue": "recompute"},
    "playbooks.tasks.*": {"queue": "recompute"},
    "voice.tasks.*": {"queue": "recompute"},
    "outbox.tasks.*": {"queue": "notifications"},
    "surveys.tasks.*": {"queue": "notifications"},
    "reports.tasks.*": {"queue": "notifications"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if EMBEDDED
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "cs@localhost")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["accounts.filters.StrictFilterBackend"],
    # the API takes JSON only (a form body is a 415): DRF reads an empty form field as a
    # missing one, so `status=` in a form would have been accepted and ignored
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.IgnoreUnknownFormat",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "accounts.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Customer success platform API",
    "DESCRIPTION": (
        "Customer data intake and read API. Token auth: `Authorization: Bearer <token>`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],  # token or session
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "accounts.models.TicketStatus",
        "InvoiceStatusEnum": "accounts.models.InvoiceStatus",
        "ImportStatusEnum": "accounts.models.ImportRecord.Status",
        "TicketPriorityEnum": "accounts.models.TicketPriority",
        "CtaPriorityEnum": "playbooks.models.Priority",
        "HealthBandEnum": "metrics.models.Band",
        "MilestoneKindEnum": "accounts.models.MilestoneKind",
    },
}

# Product settings (see ../shared/docs/metrics.md)
CURRENCY = os.environ.get("CURRENCY", "USD")
RENEWAL_GRACE_DAYS = env_int("RENEWAL_GRACE_DAYS", 30)
GROSS_MARGIN = os.environ.get("GROSS_MARGIN") or "0.80"  # CLV: a fraction 0..1, as text
if not re.fullmatch(r"0(\.\d+)?|1(\.0+)?", GROSS_MARGIN):
    raise ImproperlyConfigured(f"GROSS_MARGIN must be a fraction 0..1, got {GROSS_MARGIN!r}")
KEY_FEATURES = env_list("KEY_FEATURES", [])  # event names: per-account key-feature adoption
FIRST_VALUE_EVENT = os.environ.get("FIRST_VALUE_EVENT", "")  # event name for TTFV; "" = off
IMPORT_MAX_ERRORS = 100  # errors listed per import; the count of rejected rows is exact
EVENT_BATCH_MAX = env_int("EVENT_BATCH_MAX", 10_000)  # events per API batch request
# Raw usage events kept: this month and that many whole months before it; older monthly
# partitions are dropped by the nightly pipeline (accounts.intake.partitions). The daily
# rollups are kept for ever. 0 = keep every raw event. At least 3: health and the usage KPIs
# read only rollups, but the rollup reconcile, time to first value and the North Star still
# read recent raw events (docs/scaling.md), and the pipeline catches up a week.
USAGE_EVENTS_RETENTION_MONTHS = env_int("USAGE_EVENTS_RETENTION_MONTHS", 0)
if 0 < USAGE_EVENTS_RETENTION_MONTHS < 3 or USAGE_EVENTS_RETENTION_MONTHS < 0:
    raise ImproperlyConfigured(
        "USAGE_EVENTS_RETENTION_MONTHS must be 0 (keep all) or at least 3, "
        f"got {USAGE_EVENTS_RETENTION_MONTHS}"
    )
# Called with the ids of accounts whose data an import or tracking call changed: the health
# of those accounts is recomputed within a minute (debounced) instead of the next night.
# The voice hook scores the accounts' new texts first, so the health recompute sees them.
ACCOUNT_DATA_CHANGED_HOOKS = [
    "voice.tasks.account_texts_changed",
    "metrics.tasks.account_changed",
]
# Called (after commit) with the ids of new TimelineEntry facts (a survey answer, an escalated
# ticket, a band change): higher apps react to facts lower apps record (STYLE.md §1).
TIMELINE_FACT_HOOKS: list[str] = ["playbooks.tasks.timeline_facts_recorded"]

# Outbox: every email and webhook call is queued, claimed, sent, and retried with backoff
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 5)  # then the message is marked failed
OUTBOX_WEBHOOK_TIMEOUT = env_int("OUTBOX_WEBHOOK_TIMEOUT", 5)  # seconds per webhook call
# Webhook and Slack calls go to public addresses only (no 127.x, 10.x, 169.254.169.254 …:
# server-side request forgery); true lets an installation post to an internal Slack proxy.
OUTBOX_ALLOW_PRIVATE = env_bool("OUTBOX_ALLOW_PRIVATE", False)
# Called by metrics.pipeline as the nightly pipeline's last steps (with as_of=...), each
# recorded in the PipelineRun; metrics does not import the apps above it (playbooks).
PIPELINE_FINAL_HOOKS = [
    "playbooks.services.playbooks_evaluate_all",
    "reports.services.targets_evaluate",  # KPI targets whose review period ended
]
# A run fanned out to the workers (its health chunks, then the steps after them) keeps out
# the health rescores and other runs while it shows life: a chunk done, or its continuation
# claimed, within this many minutes (metrics.pipeline.exclusive). With no progress for that
# long it counts as dead, and the next run or rescore supersedes it. By default longer than
# the visibility timeout: the chunks of a worker killed outright come back after it, and the
# run then finishes by itself. At least 10: a chunk may run CELERY_TASK_TIME_LIMIT (5 min)
# and back off 5 min before a retry.
PIPELINE_RUN_STALE_MINUTES = env_int(
    "PIPELINE_RUN_STALE_MINUTES",
    CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] // 60 + 15,
)
if PIPELINE_RUN_STALE_MINUTES < 10:
    raise ImproperlyConfigured(
        f"PIPELINE_RUN_STALE_MINUTES must be at least 10, got {PIPELINE_RUN_STALE_MINUTES}"
    )
# Playbooks: open CTAs (open or in progress) per CSM before new lower-priority CTAs wait as
# "pending"; hours until a new CTA is due by priority (0 = the end of the same UTC day)
PLAYBOOK_MAX_OPEN_CTAS_PER_CSM = env_int("PLAYBOOK_MAX_OPEN_CTAS_PER_CSM", 25)
PLAYBOOK_DUE_HOURS = {"high": 0, "medium": 48, "low": 7 * 24}

# Surveys (issue 5): the public link pages and the fatigue rules
# Absolute links in emails (survey invitations, CTA and report mails). Unset, it is the
# address of `make run`; a deployed installation whose ALLOWED_HOSTS name a public host must
# set it (config/checks.py: an error in `manage.py check`, `migrate` and `runserver`).
SITE_URL_DEFAULT = "http://127.0.0.1:8000"
SITE_URL = os.environ.get("SITE_URL") or SITE_URL_DEFAULT
# who asks, in the survey emails and on the public pages ("{sender} would value your answer"):
# the organisation running this platform, not the respondent's own company
SURVEY_SENDER_NAME = os.environ.get("SURVEY_SENDER_NAME", "").strip() or "Customer Success"
SURVEY_FATIGUE_DAYS = env_int("SURVEY_FATIGUE_DAYS", 30)  # nobody surveyed twice within N days
SURVEY_FATIGUE_MAX_PER_YEAR = env_int("SURVEY_FATIGUE_MAX_PER_YEAR", 4)  # nor more than M a year
SURVEY_RATE_PER_TOKEN = env_int("SURVEY_RATE_PER_TOKEN", 60)  # public requests per minute
SURVEY_RATE_PER_IP = env_int("SURVEY_RATE_PER_IP", 1200)  # public requests per minute
# Survey answers reach their listeners (playbooks, health) in batches: the beat task
# surveys.tasks.announce_answers, every 5 s. None: right after each answer's commit instead
# whenever Celery runs tasks in-process (embedded mode, where no beat runs); True/False force it.
SURVEY_ANNOUNCE_INLINE = (
    env_bool("SURVEY_ANNOUNCE_INLINE", False) if os.environ.get("SURVEY_ANNOUNCE_INLINE") else None
)
SURVEY_BAND_FILTER = "metrics.survey_audience.accounts_in_bands"  # campaign audience by band
# facts that count as a CSM's first action after an answer (with any accounts.Activity)
SURVEY_FOLLOW_UP_FACT_KINDS = env_list(
    "SURVEY_FOLLOW_UP_FACT_KINDS", ["cta_step_done", "cta_closed"]
)
CSRF_FAILURE_VIEW = "surveys.public.csrf_failure"  # a clear page on the public survey form
# Functions (account_ids, today) -> {account_id: (open CTAs, overdue CTAs)} that the queue
# priority reads (metrics.standings), from the playbooks app's CTAs.
ACCOUNT_STANDING_CTA_COUNTS = ["workspace.integrations.cta_counts"]

# KPI targets (issue 9): alerts go to the target's owner by email, and to these when set
REPORTS_ALERT_WEBHOOK_URL = os.environ.get("REPORTS_ALERT_WEBHOOK_URL", "")  # signed JSON
REPORTS_ALERT_WEBHOOK_SECRET = os.environ.get("REPORTS_ALERT_WEBHOOK_SECRET", "")
REPORTS_ALERT_SLACK_URL = os.environ.get("REPORTS_ALERT_SLACK_URL", "")  # {"text": ...}
# called by the workspace dashboard with (tiles, scope_kind=, scope_key=, day=) to add each
# tile's target, on/off track and trend (the workspace does not import reports)
DASHBOARD_TILE_HOOKS = ["reports.services.tiles_decorate"]

_LOG_LEVEL = os.environ.get("LOG_LEVEL", "")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _LOG_LEVEL or "INFO"},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # failures and lockouts only
    },
}
# Eager tasks run inside the command or request that queued them, so Celery's "Task …
# succeeded" lines and the tasks' own progress lines would land between a command's output
# lines (recompute, seed_demo). Without LOG_LEVEL they log their warnings and errors only;
# LOG_LEVEL=INFO shows all again. A worker (REDIS_URL set: not eager) logs as before.
EAGER_QUIET_LOGGERS = (
    "celery",
    "accounts.tasks",
    "metrics.tasks",
    "playbooks.tasks",
    "surveys.tasks",
    "voice.tasks",
)
if CELERY_TASK_ALWAYS_EAGER and not _LOG_LEVEL:
    LOGGING["loggers"].update({name: {"level": "WARNING"} for name in EAGER_QUIET_LOGGERS})

if not EMBEDDED or not DEBUG:
    # Production profile: `manage.py check --deploy` must be clean.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    # Secure cookies are sent over HTTPS only: with plain HTTP (SSL redirect off) nobody could
    # sign in from another machine than localhost (browsers exempt only localhost), so they
    # follow the redirect unless DJANGO_SECURE_COOKIES says otherwise (a TLS proxy that does
    # the redirect itself: DJANGO_SECURE_SSL_REDIRECT=false, DJANGO_SECURE_COOKIES=true).
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", SECURE_SSL_REDIRECT)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
    SESSION_COOKIE_HTTPONLY = True
