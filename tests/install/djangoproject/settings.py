"""A project's settings with snapshot_django added to INSTALLED_APPS and no
other snapshot setting: SNAPSHOT_EXTENSION defaults to "snapshot", which the
dynamic loader finds where the package installed it, and snapshots go to
<database>-snapshots/."""
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "install-test-only"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "snapshot_django",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
