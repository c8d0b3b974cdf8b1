import os

from django.apps import AppConfig
from django.db.backends.signals import connection_created


def set_journal_mode(sender, connection, **kwargs):
    # run_e2e.py --wal: the same test with the database in WAL mode.
    if connection.vendor == "sqlite" and os.environ.get("E2E_JOURNAL_MODE"):
        connection.connection.execute(f"PRAGMA journal_mode={os.environ['E2E_JOURNAL_MODE']}").fetchall()


class AnnotationsConfig(AppConfig):
    name = "annotations"

    def ready(self):
        connection_created.connect(set_journal_mode, dispatch_uid="annotations.journal_mode")
