from django.core.management.base import CommandError

from snapshot_django.db import SnapshotCommand, query, snapshots, store_dir


class Command(SnapshotCommand):
    help = (
        "Re-reads and checks every byte of every snapshot (or of snapshot ID); exits non-zero on damage. "
        "With --integrity, also runs SQLite's integrity_check on each snapshot in place (nothing is written), "
        "proving it is a sound database."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("id", nargs="?", type=int, help="Only this snapshot (default: all).")
        parser.add_argument(
            "--integrity", action="store_true", help="Also run PRAGMA integrity_check on each snapshot (reads every page)."
        )

    def handle(self, *args, **options):
        connection = self.connection(options)
        result = query(connection, "SELECT snapshot_verify(%s)", [options["id"]])[0][0]  # raises on damage
        self.stdout.write(f"verify {store_dir(connection)}: {result}")
        if not options["integrity"]:
            return
        ids = [options["id"]] if options["id"] is not None else [s.id for s in snapshots(connection)]
        unsound = []
        for snapshot_id in ids:
            report = query(connection, "SELECT snapshot_integrity_check(%s)", [snapshot_id])[0][0]
            self.stdout.write(f"snapshot {snapshot_id} integrity {report}")
            if report != "ok":
                unsound.append(snapshot_id)
        if unsound:
            raise CommandError(f"not sound databases: snapshots {', '.join(map(str, unsound))}")
