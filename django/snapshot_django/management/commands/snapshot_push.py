from django.core.management.base import CommandError

from snapshot_django.db import SnapshotCommand, query, snapshots, store_dir


class Command(SnapshotCommand):
    help = (
        "Uploads to the store's remote (SNAPSHOT_REMOTE, or SELECT snapshot_remote(...)) every file of the "
        "snapshot store it lacks, and returns once they are durable there; exits non-zero on failure. "
        "Endpoint and credentials come from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY."
    )

    def handle(self, *args, **options):
        connection = self.connection(options)
        remote = query(connection, "SELECT snapshot_remote()")[0][0]
        if remote is None:
            raise CommandError(
                f"no remote for {store_dir(connection)}: set SNAPSHOT_REMOTE = 's3://bucket/prefix' in settings.py "
                "(or SELECT snapshot_remote('s3://bucket/prefix'))"
            )
        # Listed first: the push sends at least these (a snapshot taken
        # meanwhile may go too).
        snaps = snapshots(connection)
        uploaded = query(connection, "SELECT snapshot_push()")[0][0]  # raises, naming the failure
        what = f"uploaded {uploaded} files" if uploaded else "it already held every file"
        held = f"every snapshot up to {snaps[-1].id}" if snaps else "no snapshot (the store has none yet)"
        self.stdout.write(f"Pushed {store_dir(connection)} to {remote}: {what}; it holds {held}")
