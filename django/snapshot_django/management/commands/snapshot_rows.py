import os
from urllib.parse import quote

from django.apps import apps
from django.core.management.base import CommandError
from django.db import DatabaseError, transaction

from snapshot_django import db
from snapshot_django.prompt import confirm


def ident(name):
    return '"' + name.replace('"', '""') + '"'


class Command(db.SnapshotCommand):
    help = (
        "Shows the rows of TABLE (a table name or a model label such as annotations.Annotation) in snapshot ID "
        "that match --where, and which of them the live table lacks; with --copy, copies them back into the live "
        "table after a y/n prompt, in one transaction. The snapshot is attached read-only in place: nothing is "
        "restored, and the rest of the database is left as it is."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "id",
            help="The snapshot to read: its id (see snapshot_list, snapshot_diff), 'latest', or a moment such as "
            "'2026-12-05 14:59'.",
        )
        parser.add_argument("table", help="A table name, or an installed model as app_label.ModelName.")
        parser.add_argument(
            "--where", default="1", metavar="SQL", help="An SQL condition on the table's columns, e.g. \"project_id = 4\"."
        )
        parser.add_argument("--limit", type=int, default=20, help="Rows to print (default 20; 0: none).")
        parser.add_argument(
            "--copy",
            action="store_true",
            help="Copy the matching rows that the live table lacks (by primary key) back into it.",
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="With --copy: copy every matching row, replacing live rows with the same primary key.",
        )
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, **options):
        if options["replace"] and not options["copy"]:
            raise CommandError("--replace goes with --copy")
        connection = self.connection(options)
        snap = db.get(connection, db.resolve(connection, options["id"]))
        table = self.table_name(options["table"])
        alias = f"snapshot_{snap.id}"
        uri = (
            "file:" + quote(os.path.abspath(db.database_path(connection)))
            + f"?vfs=snapshot&snapshot={snap.id}&mode=ro&snapshot_dir=" + quote(db.store_dir(connection), safe="")
        )
        try:
            with connection.cursor() as c:
                c.execute(f"ATTACH DATABASE %s AS {ident(alias)}", [uri])
        except DatabaseError as e:
            reason = db.query(connection, "SELECT snapshot_attach_error()")[0][0]
            raise CommandError(f"cannot attach snapshot {snap.id}: {reason or e}") from e
        try:
            self.show_and_copy(connection, snap, alias, table, options)
        finally:
            with connection.cursor() as c:
                c.execute(f"DETACH DATABASE {ident(alias)}")

    def table_name(self, name):
        if "." in name:
            try:
                return apps.get_model(name)._meta.db_table
            except (LookupError, ValueError) as e:
                raise CommandError(f"no installed model {name!r}") from e
        return name

    def run(self, connection, sql):
        """Runs SQL holding the user's --where as it is (no parameters, so a % in it stays a %)."""
        try:
            with connection.cursor() as c:
                c.execute(sql)
                return c.fetchall(), [d[0] for d in c.description or []]
        except DatabaseError as e:
            raise CommandError(f"{e} (in: {sql})") from e

    def show_and_copy(self, connection, snap, alias, table, options):
        src, live = f"{ident(alias)}.{ident(table)}", f"main.{ident(table)}"
        src_cols = self.run(connection, f"PRAGMA {ident(alias)}.table_info({ident(table)})")[0]
        if not src_cols:
            raise CommandError(f"snapshot {snap.id} has no table {table!r}")
        live_cols = self.run(connection, f"PRAGMA main.table_info({ident(table)})")[0]
        if not live_cols:
            raise CommandError(f"the live database has no table {table!r}; create it first (e.g. migrate)")
        in_snapshot = {c[1] for c in src_cols}
        columns = [c[1] for c in live_cols if c[1] in in_snapshot]  # the live order; columns both have
        keys = [c[1] for c in sorted(live_cols, key=lambda c: c[5]) if c[5] > 0] or ["rowid"]
        match = f"FROM {src} AS s WHERE ({options['where']})"
        missing = (
            f"{match} AND NOT EXISTS (SELECT 1 FROM {live} AS m WHERE "
            + " AND ".join(f"m.{ident(k)} IS s.{ident(k)}" for k in keys)
            + ")"
        )
        total = self.run(connection, f"SELECT count(*) {match}")[0][0][0]
        lacking = self.run(connection, f"SELECT count(*) {missing}")[0][0][0]
        self.stdout.write(
            f"snapshot {snap.id} ({snap.created}): {total} rows of {table} match; "
            f"{lacking} of them are not in the live table (by {', '.join(keys)})"
        )
        if options["limit"] > 0 and total > 0:
            rows, names = self.run(connection, f"SELECT s.* {match} LIMIT {int(options['limit'])}")
            self.stdout.write("\t".join(names))
            for row in rows:
                self.stdout.write("\t".join("NULL" if v is None else str(v) for v in row))
            if total > len(rows):
                self.stdout.write(f"... {total - len(rows)} more")
        if not options["copy"]:
            return
        count, source = (total, match) if options["replace"] else (lacking, missing)
        if count == 0:
            self.stdout.write("Nothing to copy.")
            return
        verb = "copy (replacing rows with the same key)" if options["replace"] else "copy"
        if not options["yes"]:
            confirm(self.stdout, f"y to {verb} {count} rows from snapshot {snap.id} into {table}",
                    "not confirmed; nothing was copied")
        names = ", ".join(ident(c) for c in columns)
        insert = "INSERT OR REPLACE" if options["replace"] else "INSERT"
        sql = f"{insert} INTO {live} ({names}) SELECT {', '.join('s.' + ident(c) for c in columns)} {source}"
        try:
            with transaction.atomic(using=connection.alias):
                with connection.cursor() as c:
                    c.execute(sql)
                    copied = c.rowcount
                    if copied != count:
                        raise CommandError(f"{copied} rows would be copied, not {count}: the table changed meanwhile")
        except DatabaseError as e:
            raise CommandError(f"{e}; nothing was copied") from e
        self.stdout.write(f"Copied {copied} rows of {table} from snapshot {snap.id}, in one transaction.")
