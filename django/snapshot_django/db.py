"""The SQL the commands run, on a Django database connection."""
import os
import shlex
import sys
from collections import namedtuple

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

Snapshot = namedtuple("Snapshot", "id created label page_size page_count pages_new bytes_new db_bytes committed")


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
