"""Test settings: the real settings with test-only defaults for the required variables."""
import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("GATEWAY_KEK_PASSPHRASE", "test-kek-passphrase")
os.environ.setdefault("GATEWAY_DATA_DIR", tempfile.mkdtemp(prefix="gateway-test-data-"))

from gateway_project.settings import *  # noqa: E402,F401,F403
