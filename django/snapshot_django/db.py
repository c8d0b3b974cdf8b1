"""The SQL the commands run, on a Django database connection."""
import os
import shlex
import shutil
import sys
from collections import namedtuple

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

Snapshot = namedtuple(
    "Snapshot", "id created label page_size page_count pages_new bytes_new db_bytes committed location"
)


def query(connection, sql, params=()):
    """Runs one statement and reads it to the end (so no statement stays open)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    except DatabaseError as e:
        raise CommandError(str(e)) from e


def snapshots(connection):
    return [Snapshot(*row) for row in query(connection, "SELECT * FROM snapshot_list")]


def get(connection, snapshot_id):
    rows = query(connection, "SELECT * FROM snapshot_list WHERE id = %s", [snapshot_id])
    if not rows:
        raise CommandError(f"no snapshot {snapshot_id} in {store_dir(connection)}")
    return Snapshot(*rows[0])


def resolve(connection, spec):
    """The id of the snapshot `spec` names: an id, 'latest', or a time (the snapshot holding the state of that moment)."""
    return query(connection, "SELECT snapshot_id(%s)", [spec])[0][0]


def store_dir(connection):
    return query(connection, "SELECT snapshot_dir()")[0][0]


def database_path(connection):
    return str(connection.settings_dict["NAME"])


def backup(connection, label):
    snapshot_id = query(connection, "SELECT snapshot_backup(%s)", [label])[0][0]
    return get(connection, snapshot_id)


def restore(connection, snapshot_id):
    """Restores snapshot_id; returns the 'pre-restore' snapshot that undoes it."""
    if connection.in_atomic_block or not connection.get_autocommit():
        raise CommandError("a restore must run outside any transaction (autocommit)")
    before = query(connection, "SELECT coalesce(max(id), 0) FROM snapshot_list")[0][0]
    query(connection, "SELECT snapshot_restore(%s)", [snapshot_id])  # a statement of its own
    rows = query(
        connection,
        "SELECT * FROM snapshot_list WHERE label = 'pre-restore' AND id > %s ORDER BY id LIMIT 1",
        [before],
    )
    return Snapshot(*rows[0]) if rows else None


def restore_command(connection, snapshot_id):
    """The command line that restores snapshot_id, as this process was started."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "manage.py"
    prog = ["python3", argv0] if argv0.endswith(".py") else [os.path.basename(argv0)]
    extra = [] if connection.alias == DEFAULT_DB_ALIAS else ["--database", connection.alias]
    return shlex.join(prog + ["snapshot_restore", str(snapshot_id)] + extra)


def describe(connection, snap):
    """The log line for a new snapshot."""
    return (
        f"Backed up {database_path(connection)} to {store_dir(connection)} as snapshot {snap.id} "
        f"(label {snap.label!r}, pages_new {snap.pages_new}, bytes_new {snap.bytes_new}); "
        f"to restore it: {restore_command(connection, snap.id)}"
    )


class SnapshotCommand(BaseCommand):
    """A management command on one SQLite database (--database, default 'default')."""

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: 'default').")

    def connection(self, options):
        connection = connections[options["database"]]
        if connection.vendor != "sqlite":
            raise CommandError(f"database {connection.alias!r} is not SQLite")
        connection.ensure_connection()
        return connection


def configured_remote():
    """The remote settings.py or the environment name (SNAPSHOT_REMOTE), or None."""
    from django.conf import settings

    return getattr(settings, "SNAPSHOT_REMOTE", None) or os.environ.get("SNAPSHOT_REMOTE") or None


def fetch_from_remote(url, spec, directory):
    """Restores the snapshot `spec` names (an id, a moment, None: the latest) of
    the remote copy at `url` into a new file in a new private directory under
    `directory` (the database's own, so the file can be linked into place).
    Returns (the remote's snapshot id, the file, the directory to remove)."""
    import sqlite3
    import tempfile

    from .apps import load_into

    tmp = tempfile.mkdtemp(prefix=".snapshot-from-remote-", dir=directory)
    path = os.path.join(tmp, "db.sqlite3")
    con = sqlite3.connect(":memory:")
    try:
        load_into(con)
        snapshot_id = con.execute("SELECT snapshot_restore_to(?, ?, ?)", (path, spec, url)).fetchone()[0]
    except sqlite3.Error as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CommandError(f"cannot restore from {url}: {e}") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        con.close()
    return snapshot_id, path, tmp


def place_new_file(fetched, path):
    """Puts the file `fetched` at `path`, which must not exist (a hard link:
    it never replaces a file that appeared meanwhile), durably."""
    try:
        os.link(fetched, path)
    except FileExistsError:
        raise CommandError(f"{path} appeared meanwhile; it was left as it is") from None
    except OSError:  # a file system without hard links
        if os.path.exists(path):
            raise CommandError(f"{path} appeared meanwhile; it was left as it is") from None
        os.rename(fetched, path)
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
