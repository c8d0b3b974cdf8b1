from snapshot_django import db


class Command(db.SnapshotCommand):
    help = (
        "Shows what changed, per table and index, between snapshot A and snapshot B, or between snapshot A and "
        "the live database when B is omitted: pages changed and, for tables with rowids, rows added, deleted and "
        "changed. Reads only the pages that differ; writes nothing."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "a", help="The older snapshot: its id (see snapshot_list), 'latest', or a moment such as '2026-12-05 14:59'."
        )
        parser.add_argument("b", nargs="?", help="The newer snapshot, named the same way; default: the live database.")
        parser.add_argument("--all", action="store_true", help="Also list the tables and indexes that did not change.")

    def handle(self, *args, **options):
        connection = self.connection(options)
        a = db.resolve(connection, options["a"])
        b = None if options["b"] is None else db.resolve(connection, options["b"])
        snap_a = db.get(connection, a)
        against = "the live database" if b is None else describe(db.get(connection, b))
        rows = db.query(
            connection,
            "SELECT name, type, status, pages_changed, rows_added, rows_deleted, rows_changed "
            "FROM snapshot_diff(%s, %s)",
            [a, b],
        )
        self.stdout.write(f"{describe(snap_a)} -> {against} ({db.database_path(connection)})")
        shown = [r for r in rows if options["all"] or r[2] != "unchanged"]
        if not shown:
            self.stdout.write("No table or index changed.")
            return
        header = ("name", "type", "status", "pages", "rows added", "rows deleted", "rows changed")
        cells = [header] + [tuple("-" if v is None else str(v) for v in r) for r in shown]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for row in cells:
            self.stdout.write("  ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
        if any(r[4] is None for r in shown):
            self.stdout.write("(-: an index or a WITHOUT ROWID table, whose rows are not counted)")


def describe(snap):
    label = f", label {snap.label!r}" if snap.label else ""
    return f"snapshot {snap.id} ({snap.created}{label})"
