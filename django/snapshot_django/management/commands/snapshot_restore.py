
from django.core.management.base import CommandError

from snapshot_django import db
from snapshot_django.prompt import confirm


class Command(db.SnapshotCommand):
    help = (
        "Restores snapshot ID (the latest if omitted), or with --at the snapshot holding the state of a "
        "moment (its last commit at or before it), into the live database while the application runs. "
        "The replaced state is kept as a 'pre-restore' snapshot, so the restore can be undone."
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
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, **options):
        connection = self.connection(options)
        path = db.database_path(connection)
        if options["at"] is not None:
            if options["id"] is not None:
                raise CommandError("give a snapshot id or --at TIME, not both")
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
        if pre is not None:
            self.stdout.write(
                f"The replaced state is snapshot {pre.id} (pre-restore); to undo: {db.restore_command(connection, pre.id)}"
            )
