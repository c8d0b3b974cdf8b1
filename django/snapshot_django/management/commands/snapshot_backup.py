from snapshot_django.db import SnapshotCommand, backup, describe


class Command(SnapshotCommand):
    help = "Takes a snapshot of the live database (no downtime) and prints how to restore it."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--label", default="backup", help="Label of the snapshot (default: 'backup').")

    def handle(self, *args, **options):
        connection = self.connection(options)
        self.stdout.write(describe(connection, backup(connection, options["label"])))
