from django.core.management.base import CommandError

from snapshot_django.db import SnapshotCommand, query, store_dir


class Command(SnapshotCommand):
    help = (
        "Deletes old snapshots: keeps the newest --keep-last N and those younger than --keep-days D "
        "(the newest is always kept), and reclaims their space."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--keep-last", type=int, metavar="N")
        parser.add_argument("--keep-days", type=float, metavar="D")

    def handle(self, *args, **options):
        if options["keep_last"] is None and options["keep_days"] is None:
            raise CommandError("give --keep-last N and/or --keep-days D")
        connection = self.connection(options)
        count = query(connection, "SELECT snapshot_prune(%s, %s)", [options["keep_last"], options["keep_days"]])[0][0]
        self.stdout.write(f"pruned {count} snapshot(s) from {store_dir(connection)}")
