from snapshot_django.db import SnapshotCommand, query, store_dir


class Command(SnapshotCommand):
    help = "Re-reads and checks every byte of every snapshot (or of snapshot ID); exits non-zero on damage."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("id", nargs="?", type=int, help="Only this snapshot (default: all).")

    def handle(self, *args, **options):
        connection = self.connection(options)
        result = query(connection, "SELECT snapshot_verify(%s)", [options["id"]])[0][0]  # raises on damage
        self.stdout.write(f"verify {store_dir(connection)}: {result}")
