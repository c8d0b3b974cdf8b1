from snapshot_django.db import SnapshotCommand, snapshots, store_dir


class Command(SnapshotCommand):
    help = (
        "Lists the snapshots of the database, oldest first; location: local, remote (pruned here, kept on the "
        "store's remote) or both."
    )

    def handle(self, *args, **options):
        connection = self.connection(options)
        self.stdout.write(f"Snapshots in {store_dir(connection)}:")
        row = "{:>6}  {:<24}  {:<20}  {:>8}  {:>9}  {:>12}  {:>12}  {:<24}  {:<8}"
        self.stdout.write(row.format("id", "created", "label", "pages", "pages_new", "bytes_new", "db_bytes", "committed",
                                     "location"))
        for s in snapshots(connection):
            self.stdout.write(row.format(s.id, s.created, s.label, s.page_count, s.pages_new, s.bytes_new, s.db_bytes,
                                         s.committed or "-", s.location))
