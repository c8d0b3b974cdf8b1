from django.core.management.base import CommandError

from snapshot_django.db import SnapshotCommand, query, store_dir


class Command(SnapshotCommand):
    help = (
        "Deletes old snapshots and reclaims their space: keeps the newest --keep-last N and those younger than "
        "--keep-days D (the newest is always kept), or what a tiered --policy keeps, e.g. "
        "'within 1h, hourly 48, daily 30, weekly 12, monthly 12' (see snapshot_prune in the README)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--keep-last", type=int, metavar="N")
        parser.add_argument("--keep-days", type=float, metavar="D")
        parser.add_argument("--policy", metavar="RULES", help="Retention tiers, as snapshot_prune(policy) takes them.")

    def handle(self, *args, **options):
        by_count = options["keep_last"] is not None or options["keep_days"] is not None
        if options["policy"] is not None and by_count:
            raise CommandError("give --policy RULES, or --keep-last/--keep-days, not both")
        if options["policy"] is None and not by_count:
            raise CommandError("give --keep-last N and/or --keep-days D, or --policy RULES")
        connection = self.connection(options)
        if options["policy"] is not None:
            count = query(connection, "SELECT snapshot_prune(%s)", [options["policy"]])[0][0]
        else:
            count = query(connection, "SELECT snapshot_prune(%s, %s)", [options["keep_last"], options["keep_days"]])[0][0]
        self.stdout.write(f"pruned {count} snapshot(s) from {store_dir(connection)}")
