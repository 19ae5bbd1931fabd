"""Test settings: the real settings with test-only defaults for the required variables."""
import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("GATEWAY_KEK_PASSPHRASE", "test-kek-passphrase")
os.environ.setdefault("GATEWAY_DATA_DIR", tempfile.mkdtemp(prefix="gateway-test-data-"))

from gateway_project.settings import *  # noqa: E402,F401,F403

# A file, not Django's shared-cache in-memory database: several threads writing at once (the usage writer,
# budget reservations under sync_to_async) need SQLite's busy timeout, which shared-cache memory ignores.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}  # noqa: F405
