import os
import sys

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.models.signals import pre_migrate

from . import auto_log


def extension_path():
    return getattr(settings, "SNAPSHOT_EXTENSION", None) or os.environ.get("SNAPSHOT_EXTENSION") or "snapshot"


def store_dir_setting():
    return getattr(settings, "SNAPSHOT_DIR", None) or os.environ.get("SNAPSHOT_DIR") or None


def load_into(raw):
    """Loads the extension into one sqlite3 connection."""
    path = extension_path()
    raw.enable_load_extension(True)
    try:
        try:
            raw.load_extension(path, entrypoint="sqlite3_snapshot_init")  # Python >= 3.12
        except TypeError:
            raw.load_extension(path)  # file name 'snapshot' -> sqlite3_snapshot_init
    except Exception as e:
        raise ImproperlyConfigured(
            f"snapshot_django: cannot load the SQLite extension {path!r} ({e}); "
            "install the snapshot package, or set SNAPSHOT_EXTENSION to the path of snapshot.so"
        ) from e
    finally:
        raw.enable_load_extension(False)


def make_snapshot_vfs_default():
    """Before Django opens a database: load the extension once in this process
    and make its copy-on-write VFS the default, so every connection Django
    opens afterwards records the pages it changes (the next snapshot reads
    only those) and never waits for a running snapshot."""
    import sqlite3

    con = sqlite3.connect(":memory:")
    try:
        load_into(con)
        con.execute("SELECT snapshot_config('default_vfs', 1)").fetchall()
    finally:
        con.close()  # the extension stays loaded (SQLITE_OK_LOAD_PERMANENTLY)


# Database aliases whose automatic-snapshot interval this process has set.
_auto_applied = set()


def apply_auto_setting(alias, raw):
    """SNAPSHOT_AUTO_SECONDS: once per process and database, make the store's
    automatic-snapshot interval this one (SELECT snapshot_auto(N)). The
    setting lives in the store, so a later snapshot_auto() from elsewhere
    holds until the next process start."""
    seconds = getattr(settings, "SNAPSHOT_AUTO_SECONDS", None)
    if seconds is None or alias in _auto_applied:
        return
    _auto_applied.add(alias)
    if raw.execute("SELECT snapshot_auto()").fetchone()[0] != int(seconds):
        raw.execute("SELECT snapshot_auto(?)", (int(seconds),)).fetchall()


def apply_remote_key_setting():
    """SNAPSHOT_REMOTE_KEY_FILE: the file holding the key that encrypts the
    remote copy. The extension reads the file's name from the environment
    variable of the same name (never the key itself), so the setting is put
    there before any connection opens."""
    key_file = getattr(settings, "SNAPSHOT_REMOTE_KEY_FILE", None)
    if key_file:
        os.environ["SNAPSHOT_REMOTE_KEY_FILE"] = str(key_file)


# Database aliases whose remote this process has set.
_remote_applied = set()


def apply_remote_setting(alias, raw):
    """SNAPSHOT_REMOTE: once per process and database, make the store's remote
    this one (SELECT snapshot_remote(url); "" removes it). Like the store
    directory, the remote lives in the store, so the sqlite3 shell and cron
    push to the same place; None (the default) leaves the store's own
    setting, or $SNAPSHOT_REMOTE, in effect."""
    url = getattr(settings, "SNAPSHOT_REMOTE", None)
    if url is None or alias in _remote_applied:
        return
    import sqlite3

    try:
        if raw.execute("SELECT snapshot_remote()").fetchone()[0] != (url or None):
            raw.execute("SELECT snapshot_remote(?)", (url or None,)).fetchall()
    except sqlite3.Error as e:
        # Every connection fails until the setting is right: a remote that
        # silently is not there is a backup that silently is not made.
        raise ImproperlyConfigured(f"snapshot_django: SNAPSHOT_REMOTE = {url!r}: {e}") from e
    _remote_applied.add(alias)


def load_extension(sender, connection, **kwargs):
    """connection_created: give every new SQLite connection the snapshot_* functions."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    load_into(raw)
    store_dir = store_dir_setting()
    if store_dir:
        raw.execute("SELECT snapshot_config('dir', ?)", (str(store_dir),)).fetchall()
    if not connection.is_in_memory_db():
        apply_auto_setting(connection.alias, raw)
        apply_remote_setting(connection.alias, raw)
        auto_log.check_if_due(raw)


def snapshot_before_migrate(sender, using, plan=None, verbosity=1, **kwargs):
    """pre_migrate: one 'pre-migrate' snapshot when migrate has something to apply."""
    connection = connections[using]
    if not plan or connection.vendor != "sqlite" or connection.is_in_memory_db():
        return
    if not getattr(settings, "SNAPSHOT_BEFORE_MIGRATE", True):
        return
    from .db import backup, describe

    snap = backup(connection, "pre-migrate")
    if verbosity >= 1:
        (kwargs.get("stdout") or sys.stdout).write(describe(connection, snap) + "\n")


class SnapshotConfig(AppConfig):
    name = "snapshot_django"
    verbose_name = "SQLite snapshots"

    def ready(self):
        apply_remote_key_setting()
        # SNAPSHOT_VFS = False keeps SQLite's default VFS: snapshots then
        # read every page, and in rollback-journal mode writers wait for them.
        if getattr(settings, "SNAPSHOT_VFS", True) and any(
            db.get("ENGINE") == "django.db.backends.sqlite3" for db in settings.DATABASES.values()
        ):
            make_snapshot_vfs_default()
        connection_created.connect(load_extension, dispatch_uid="snapshot_django.load_extension")
        # Automatic snapshots' errors, and the recovery after them, into the log (auto_log.py).
        request_finished.connect(auto_log.check_after_request, dispatch_uid="snapshot_django.auto_log")
        # sender=self: pre_migrate is sent once per app per migrate run.
        pre_migrate.connect(snapshot_before_migrate, sender=self, dispatch_uid="snapshot_django.pre_migrate")
