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
        parser.add_argument(
            "--from",
            dest="remote",
            metavar="s3://BUCKET/PREFIX",
            nargs="?",
            const="",
            help="Check the remote copy instead (without a value: the store's remote, SNAPSHOT_REMOTE): downloads "
            "every object it needs into a temporary directory and checks every byte.",
        )

    def handle(self, *args, **options):
        if options["remote"] is not None:
            return self.verify_remote(options)
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

    def verify_remote(self, options):
        if options["integrity"]:
            raise CommandError("--integrity checks the local snapshots; run it without --from")
        connection = self.connection(options)
        url = options["remote"] or query(connection, "SELECT snapshot_remote()")[0][0]  # the store's, or $SNAPSHOT_REMOTE
        if not url or not url.startswith("s3://"):
            raise CommandError("--from needs s3://bucket/prefix (or SNAPSHOT_REMOTE in settings.py)")
        result = query(connection, "SELECT snapshot_verify(%s, %s)", [options["id"], url])[0][0]  # raises on damage
        self.stdout.write(f"verify {url}: {result}")
