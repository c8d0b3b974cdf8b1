"""Settings of the snapshot_django end-to-end test project.

E2E_DB_PATH: the SQLite database (default: a file in the temp directory).
SNAPSHOT_EXTENSION, SNAPSHOT_DIR: read by snapshot_django from the environment.
"""
import os
import tempfile

SECRET_KEY = "e2e-test-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "e2eproject.urls"
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "snapshot_django",
    "annotations",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("E2E_DB_PATH") or os.path.join(tempfile.gettempdir(), "snapshot-django-e2e.sqlite3"),
        "OPTIONS": {"timeout": 20},
        "CONN_MAX_AGE": None,  # persistent connections
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# snapshot_django: SNAPSHOT_EXTENSION and SNAPSHOT_DIR default to the
# environment variables of the same names.

# auto_e2e.py: automatic snapshots every E2E_AUTO_SECONDS, their status
# looked at every second.
if os.environ.get("E2E_AUTO_SECONDS"):
    SNAPSHOT_AUTO_SECONDS = int(os.environ["E2E_AUTO_SECONDS"])
    SNAPSHOT_STATUS_CHECK_SECONDS = 1

# remote_e2e.py: the store's remote copy (snapshot_push, snapshot_restore --from).
if os.environ.get("E2E_SNAPSHOT_REMOTE") is not None:
    SNAPSHOT_REMOTE = os.environ["E2E_SNAPSHOT_REMOTE"]
if os.environ.get("E2E_SNAPSHOT_REMOTE_KEY_FILE"):
    SNAPSHOT_REMOTE_KEY_FILE = os.environ["E2E_SNAPSHOT_REMOTE_KEY_FILE"]
