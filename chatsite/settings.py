"""Django settings, derived entirely from :mod:`chatsite.config`."""

from __future__ import annotations

import dj_database_url

from chatsite import config as _config

CHAT = _config.load()
BASE_DIR = _config.BASE_DIR

SECRET_KEY = CHAT.secret_key
DEBUG = CHAT.debug
ALLOWED_HOSTS = list(CHAT.allowed_hosts)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "chat",
    "chat.parlant",
    "security",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Each app's own templates/ (chat/templates/, monitoring/templates/): they travel in the wheel.
        "DIRS": [],
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

# Socket handlers reach the database from one long-lived thread
# (database_sync_to_async), which closes "old" connections around every
# call: with a max age of 0 that would reconnect to PostgreSQL for each
# message.  Keep connections, without a health check: that check is a
# ``SELECT 1`` round trip at the start of every call (every message batch).
# A connection that broke fails one query, and Django replaces it on the next.
DATABASES = {"default": dj_database_url.parse(CHAT.database_url, conn_max_age=600, conn_health_checks=False)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several async handlers write at once; wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}

if CHAT.uses_redis:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py's default 5 s socket timeout equals the layer's blocking
            # read: an idle worker's receive would time out and could drop a message.
            "CONFIG": {"hosts": [{"address": CHAT.redis_url, "socket_timeout": 30}], "capacity": 1000, "expiry": 30},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CHAT.redis_url}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "chat.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Every operation documents what the framework answers besides its own errors (429, 413...).
    "DEFAULT_SCHEMA_CLASS": "chat.api.schema.ChatAutoSchema",
    "EXCEPTION_HANDLER": "chat.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["chat.api.throttling.ApiRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Chat server API",
    "DESCRIPTION": "Workspaces, sessions, messages, presence and moderation for the real-time chat.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "SenderTypeEnum": "chat.models.SenderType",
        "PostedSenderTypeEnum": "chat.api.serializers.POSTED_SENDER_TYPES",
        "SessionStatusEnum": "chat.models.SessionStatus",
        "PresenceStatusEnum": "chat.models.PresenceStatus",
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Uploads (``chat.services.attachments``) go through the "attachments" storage: a local directory by
# default, any Django storage (django-storages' S3, GCS, Azure...) by CHAT_ATTACHMENTS_STORAGE.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "attachments": {
        "BACKEND": CHAT.attachments_storage or "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {} if CHAT.attachments_storage else {"location": CHAT.attachments_dir},
    },
}

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Static files are the apps' own (chat/static/chat/...), found by the app directories finder.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "chat": {"level": "INFO"},
        "security": {"level": "INFO"},
        # A client's error (4xx: "Not Found: /favicon.ico") is counted by status
        # (django-prometheus), not logged with its path, one line per request
        # anyone can send.  Server errors (5xx) are still logged, with the path.
        "django.request": {"level": "ERROR"},
    },
}

# Prometheus: django-prometheus apps, middleware, database and cache backends (docs/monitoring.md).
from monitoring.instrumentation import instrument_settings  # noqa: E402

instrument_settings(globals())
