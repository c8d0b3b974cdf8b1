import os
import shutil

from django.core.management.base import CommandError
from django.db import connections

from snapshot_django import db
from snapshot_django.prompt import confirm


class Command(db.SnapshotCommand):
    help = (
        "Restores snapshot ID (the latest if omitted), or with --at the snapshot holding the state of a "
        "moment (its last commit at or before it), into the live database while the application runs. "
        "The replaced state is kept as a 'pre-restore' snapshot, so the restore can be undone. "
        "With --from s3://BUCKET/PREFIX, from that remote copy (snapshot_push): on a new machine, where the "
        "database file does not exist yet, it creates it."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("id", nargs="?", type=int, help="Snapshot id (see snapshot_list); default: the latest.")
        parser.add_argument(
            "--at",
            metavar="TIME",
            help="Restore the snapshot holding the state at TIME (its last commit at or before it), ISO 8601: '2026-12-05 14:59:00' "
            "(UTC unless followed by Z or +hh:mm, e.g. '2026-12-05T15:59:00+01:00').",
        )
        parser.add_argument(
            "--from",
            dest="remote",
            metavar="s3://BUCKET/PREFIX",
            nargs="?",
            const="",
            help="Restore from this remote copy (made by snapshot_push; ID and --at name its snapshots); "
            "without a value, from SNAPSHOT_REMOTE. Endpoint and credentials: AWS_ENDPOINT_URL, AWS_REGION, "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.",
        )
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, **options):
        if options["at"] is not None and options["id"] is not None:
            raise CommandError("give a snapshot id or --at TIME, not both")
        if options["remote"] is not None:
            return self.restore_from_remote(options)
        connection = self.connection(options)
        path = db.database_path(connection)
        if options["at"] is not None:
            snap = db.get(connection, db.resolve(connection, options["at"]))
        elif options["id"] is None:
            snaps = db.snapshots(connection)
            if not snaps:
                raise CommandError(f"no snapshots in {db.store_dir(connection)}")
            snap = snaps[-1]
        else:
            snap = db.get(connection, options["id"])
        what = f"snapshot {snap.id} ({snap.created}, label {snap.label!r})"
        self.stdout.write(f"Found {what} in {db.store_dir(connection)}, database {path}")
        if not options["yes"]:
            confirm(self.stdout, f"y to confirm restoring snapshot {snap.id} into {path}",
                    "not confirmed; nothing was changed")
        pre = db.restore(connection, snap.id)  # the id chosen above, even if a backup lands meanwhile
        self.stdout.write(f"Restored {what} to {path}")
        self.write_undo(connection, pre)

    def restore_from_remote(self, options):
        url = options["remote"] or db.configured_remote()
        if not url:
            raise CommandError("--from needs s3://bucket/prefix (or SNAPSHOT_REMOTE in settings.py)")
        if not url.startswith("s3://"):
            raise CommandError(f"--from {url!r}: a remote copy is named s3://bucket/prefix")
        connection = connections[options["database"]]
        if connection.vendor != "sqlite":
            raise CommandError(f"database {connection.alias!r} is not SQLite")
        path = os.path.abspath(db.database_path(connection))
        if not os.path.isdir(os.path.dirname(path)):
            raise CommandError(f"the database's directory {os.path.dirname(path)} does not exist; create it first")
        if not os.path.exists(path):
            # SQLite would roll such a journal, or a WAL's frames, of a database
            # that is gone into the new file; the tracking file would describe it.
            leftovers = [path + end for end in ("-journal", "-wal", "-snaptrack") if os.path.exists(path + end)]
            if leftovers:
                raise CommandError(
                    f"{path} does not exist but {', '.join(leftovers)} does, left by a database that is gone: "
                    "move it away first; nothing was changed"
                )
        spec = options["at"] if options["at"] is not None else options["id"]
        # Fetched first, into a file of its own beside the database (every
        # page checked), so the question names the snapshot found; nothing
        # else changes until it is answered.
        remote_id, fetched, tmp = db.fetch_from_remote(url, spec, os.path.dirname(path))
        try:
            # Not opened through Django before this point: opening creates the file.
            new_machine = not os.path.exists(path)
            what = f"snapshot {remote_id} of {url}"
            self.stdout.write(f"Found {what}, database {path}" + (" (does not exist yet)" if new_machine else ""))
            if not options["yes"]:
                confirm(self.stdout, f"y to confirm restoring {what} into {path}", "not confirmed; nothing was changed")
            if new_machine:
                db.place_new_file(fetched, path)
                self.stdout.write(f"Restored {what} to {path} (a new file: there is nothing to undo)")
                return
            # The live database: the fetched file becomes a snapshot of the
            # local store, and the ordinary live restore puts it in place and
            # keeps the replaced state as 'pre-restore'.
            connection.ensure_connection()
            label = f"from-remote-{remote_id}"
            local_id = db.query(connection, "SELECT snapshot_import(%s, %s)", [fetched, label])[0][0]
            pre = db.restore(connection, local_id)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.stdout.write(f"Restored {what} to {path} (kept in {db.store_dir(connection)} as snapshot {local_id})")
        self.write_undo(connection, pre)

    def write_undo(self, connection, pre):
        """How to undo a restore: its 'pre-restore' snapshot."""
        if pre is not None:
            self.stdout.write(
                f"The replaced state is snapshot {pre.id} (pre-restore); to undo: {db.restore_command(connection, pre.id)}"
            )
