#!/usr/bin/python3
"""End-to-end test of recovering part of the data with snapshot_django, the
README's story: in an annotation tool, one person deletes the annotations of
one document; others keep working; the operator sees what changed with
`manage.py snapshot_diff`, looks at the lost rows with `manage.py
snapshot_rows` and copies back only those, in one transaction, while
everyone else's later work stays. Also `snapshot_verify --integrity`.

    /usr/bin/python3 tests/django/recover_e2e.py [--wal] [path/to/snapshot.so]

Same conventions as run_e2e.py (whose helpers it uses): Debian's python3
with python3-django; prints "N passed, M failed" last; non-zero on failure.
"""
import os
import re
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_e2e  # noqa: E402  (check, manage, the package paths)
from run_e2e import check, manage, require  # noqa: E402


def run(tmp):
    db_path = os.path.join(tmp, "db.sqlite3")
    store = os.path.join(tmp, "store")
    os.makedirs(store)
    os.environ.update(
        E2E_DB_PATH=db_path, SNAPSHOT_DIR=store, DJANGO_SETTINGS_MODULE="e2eproject.settings", PYTHONDONTWRITEBYTECODE="1"
    )
    os.environ["PYTHONPATH"] = os.pathsep.join([HERE, run_e2e.PACKAGE_DIR])
    require("migrate succeeds", manage("migrate", "--no-input").returncode == 0)
    sys.path[:0] = [HERE, run_e2e.PACKAGE_DIR]
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection

    from annotations.models import Annotation, Document

    alice = User.objects.create(username="alice")
    bob = User.objects.create(username="bob")
    docs = [Document.objects.create(name=f"doc {i}", text="x" * 300) for i in range(5)]
    for d in docs:
        Annotation.objects.bulk_create(
            Annotation(document=d, user=alice, value=f"label {d.pk}-{j}", start=j, end=j + 3) for j in range(200)
        )
    p = manage("snapshot_backup", "--label", "nightly")
    m = re.search(r"as snapshot (\d+)", p.stdout)
    require("nightly backup", p.returncode == 0 and m is not None, p.stderr)
    nightly = int(m.group(1))
    lost_doc = docs[2].pk
    lost = sorted(Annotation.objects.filter(document_id=lost_doc).values_list("pk", "value", "start", "end"))

    # 15:00: one user deletes one document's annotations; others keep working.
    Annotation.objects.filter(document_id=lost_doc).delete()
    Annotation.objects.filter(document_id=docs[0].pk, start__lt=10).update(validated=True)
    Annotation.objects.bulk_create(
        Annotation(document=docs[4], user=bob, value=f"bob {j}", start=j, end=j + 1) for j in range(50)
    )
    kept = sorted(Annotation.objects.exclude(document_id=lost_doc).values_list("pk", "value", "validated"))
    connection.close()  # the commands run in processes of their own

    # What changed since the nightly snapshot.
    p = manage("snapshot_diff", str(nightly))
    table = "annotations_annotation"
    row = next((l.split() for l in p.stdout.splitlines() if l.startswith(table + " ")), None)
    check("snapshot_diff lists the annotation table as changed", p.returncode == 0 and row is not None, p.stdout + p.stderr)
    if row:
        check(
            "snapshot_diff counts 50 rows added, 200 deleted, 10 changed",
            row[2] == "changed" and row[4:7] == ["50", "200", "10"],
            row,
        )
    check("snapshot_diff leaves out unchanged tables", "auth_user " not in p.stdout, p.stdout)
    p = manage("snapshot_diff", str(nightly), "--all")
    check("snapshot_diff --all lists unchanged tables too", "auth_user " in p.stdout and "unchanged" in p.stdout)
    p = manage("snapshot_backup", "--label", "after")
    after = int(re.search(r"as snapshot (\d+)", p.stdout).group(1))
    p = manage("snapshot_diff", str(nightly), str(after))
    check("snapshot_diff A B compares two snapshots", p.returncode == 0 and f"snapshot {after} (" in p.stdout
          and re.search(rf"{table} +table +changed +\d+ +50 +200 +10", p.stdout) is not None, p.stdout)
    by_id = p.stdout
    p = manage("snapshot_diff", str(nightly), "latest")
    check("snapshot_diff takes 'latest' as snapshot_restore does", p.returncode == 0 and p.stdout == by_id, p.stdout + p.stderr)
    p = manage("snapshot_diff", "999")
    check("snapshot_diff of an unknown snapshot fails clearly", p.returncode != 0 and "999" in p.stderr, p.stderr)

    # Look at the lost rows, by model label.
    where = f"document_id = {lost_doc}"
    p = manage("snapshot_rows", str(nightly), "annotations.Annotation", "--where", where, "--limit", "3")
    check(
        "snapshot_rows shows 200 matching rows, all missing from the live table",
        p.returncode == 0 and "200 rows of annotations_annotation match; 200 of them are not in the live table" in p.stdout,
        p.stdout + p.stderr,
    )
    check("snapshot_rows prints the first rows and how many more", "... 197 more" in p.stdout, p.stdout)
    p = manage("snapshot_rows", str(nightly), table, "--where", "value LIKE 'label%' AND " + where, "--limit", "0")
    check("a % in --where is SQL's, not a parameter marker", p.returncode == 0 and "200 rows" in p.stdout, p.stdout + p.stderr)
    p = manage("snapshot_rows", str(nightly), table, "--where", "no_such_column = 1")
    check("a bad --where is a clear error", p.returncode != 0 and "no_such_column" in p.stderr, p.stderr)

    def live_annotations():
        connection.close()
        return sorted(Annotation.objects.values_list("pk", "value", "validated"))

    before = live_annotations()
    p = manage("snapshot_rows", str(nightly), table, "--where", where, "--copy", stdin="n\n")
    check("declining the prompt copies nothing", p.returncode != 0 and live_annotations() == before, p.stdout + p.stderr)

    p = manage("snapshot_rows", str(nightly), table, "--where", where, "--copy", stdin="y\n")
    check("confirmed: 200 rows copied in one transaction", p.returncode == 0 and "Copied 200 rows" in p.stdout, p.stdout + p.stderr)
    connection.close()
    back = sorted(Annotation.objects.filter(document_id=lost_doc).values_list("pk", "value", "start", "end"))
    check("the lost annotations are back, with their ids", back == lost)
    check("everyone else's later work is kept", sorted(Annotation.objects.exclude(document_id=lost_doc)
                                                       .values_list("pk", "value", "validated")) == kept)
    p = manage("snapshot_rows", str(nightly), table, "--where", where, "--copy", "--yes")
    check("copying again finds nothing to copy", p.returncode == 0 and "Nothing to copy" in p.stdout, p.stdout)
    p = manage("snapshot_rows", str(nightly), "annotations_nosuch")
    check("an unknown table is a clear error", p.returncode != 0 and "no table 'annotations_nosuch'" in p.stderr, p.stderr)

    # --replace puts back old versions of rows that still exist.
    p = manage("snapshot_rows", str(nightly), table, "--where", f"document_id = {docs[0].pk} AND start < 10", "--copy",
               "--replace", "--yes")
    connection.close()
    check("--replace copies back the old versions", p.returncode == 0 and "Copied 10 rows" in p.stdout
          and not Annotation.objects.filter(validated=True).exists(), p.stdout + p.stderr)
    p = manage("snapshot_diff", str(after))
    check("afterwards snapshot_diff shows the 200 rows added back and 10 changed",
          re.search(rf"{table} +table +changed +\d+ +200 +0 +10", p.stdout) is not None, p.stdout)
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM pragma_database_list WHERE name LIKE 'snapshot_%'")
        check("no snapshot stays attached", c.fetchone()[0] == 0)

    # A copy that breaks a constraint is rolled back whole: the document of
    # these annotations is gone too (Django's foreign keys are checked at
    # commit).
    gone = docs[3].pk
    Document.objects.filter(pk=gone).delete()
    connection.close()
    p = manage("snapshot_rows", str(nightly), table, "--where", f"document_id = {gone}", "--copy", "--yes")
    connection.close()
    check("a copy that breaks a foreign key copies nothing", p.returncode != 0 and "nothing was copied" in p.stderr
          and not Annotation.objects.filter(document_id=gone).exists(), p.stdout + p.stderr)

    # A snapshot proven a sound database without writing it.
    p = manage("snapshot_verify", str(nightly), "--integrity")
    check("snapshot_verify --integrity says ok", p.returncode == 0 and "integrity ok" in p.stdout, p.stdout + p.stderr)


def main():
    args = [a for a in sys.argv[1:] if a != "--wal"]
    if "--wal" in sys.argv[1:]:
        os.environ["E2E_JOURNAL_MODE"] = "wal"
    so = os.path.abspath(args[0] if args else os.environ.get("SNAPSHOT_EXTENSION") or "/work/main/build/snapshot.so")
    os.environ["SNAPSHOT_EXTENSION"] = so
    tmp = tempfile.mkdtemp(prefix="snapshot-django-recover-")
    try:
        run(tmp)
    except run_e2e.Fatal:
        pass
    except Exception as e:
        import traceback

        traceback.print_exc()
        check(f"no unexpected error ({type(e).__name__}: {e})", False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{run_e2e.passed} passed, {run_e2e.failed} failed")
    return 1 if run_e2e.failed else 0


if __name__ == "__main__":
    sys.exit(main())
