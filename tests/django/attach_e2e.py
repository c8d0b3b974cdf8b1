#!/usr/bin/python3
"""Copying one deleted project's rows back from an attached snapshot, in a
Django project, through connection.cursor(), while its other data stays:

    /usr/bin/python3 tests/django/attach_e2e.py path/to/snapshot.so

Prints "N passed, M failed" last; exits non-zero on any failure.
"""
import os
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "django")]

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}" + (f"\n      {detail}" if detail else ""))


def main():
    tmp = tempfile.mkdtemp(prefix="snapshot-attach-e2e-")
    os.environ["E2E_DB_PATH"] = os.path.join(tmp, "app.sqlite3")
    os.environ["SNAPSHOT_EXTENSION"] = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SNAPSHOT_EXTENSION", "")
    os.environ.pop("SNAPSHOT_DIR", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "e2eproject.settings"
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, transaction, DatabaseError

    from annotations.models import Annotation, Document

    call_command("migrate", verbosity=0)
    user = User.objects.create(username="annotator")
    for p in range(1, 4):  # three projects (documents), 50 annotations each
        doc = Document.objects.create(name=f"project {p}", text="x" * 500)
        Annotation.objects.bulk_create(
            Annotation(document=doc, user=user, value=f"label {i}", start=i, end=i + 3) for i in range(50)
        )
    with connection.cursor() as c:
        c.execute("SELECT snapshot_backup('nightly')")
        snap = c.fetchone()[0]
    lost = sorted(Annotation.objects.filter(document__name="project 2").values_list("id", "value", "start"))
    # 15:00: project 2 is deleted; others keep working.
    Document.objects.filter(name="project 2").delete()
    Annotation.objects.create(document=Document.objects.get(name="project 1"), user=user, value="after", start=0, end=1)
    check("project 2 is gone", Annotation.objects.filter(document__name="project 2").count() == 0)

    db = connection.settings_dict["NAME"]
    with connection.cursor() as c:
        c.execute(f"ATTACH 'file:{db}?vfs=snapshot&snapshot={snap}&mode=ro' AS s")
        c.execute("SELECT count(*) FROM s.annotations_annotation WHERE document_id = "
                  "(SELECT id FROM s.annotations_document WHERE name = 'project 2')")
        check("the snapshot still has project 2", c.fetchone()[0] == 50)
        with transaction.atomic():
            c.execute("INSERT INTO main.annotations_document SELECT * FROM s.annotations_document WHERE name = 'project 2'")
            c.execute("INSERT INTO main.annotations_annotation SELECT * FROM s.annotations_annotation WHERE document_id = "
                      "(SELECT id FROM s.annotations_document WHERE name = 'project 2')")
        try:
            c.execute("DELETE FROM s.annotations_annotation")
            check("a write to the snapshot fails", False, "it succeeded")
        except DatabaseError as e:
            check("a write to the snapshot fails", "readonly" in str(e), str(e))
        c.execute("DETACH s")
    back = sorted(Annotation.objects.filter(document__name="project 2").values_list("id", "value", "start"))
    check("project 2's rows are back, as they were", back == lost, f"{len(back)} rows, want {len(lost)}")
    check("work done after the accident stays", Annotation.objects.filter(value="after").count() == 1)
    check("nothing else changed", Annotation.objects.count() == 151)
    with connection.cursor() as c:
        try:
            c.execute(f"ATTACH 'file:{db}?vfs=snapshot&snapshot=999&mode=ro' AS bad")
            check("an unknown snapshot is refused", False, "attached")
        except DatabaseError:
            c.execute("SELECT snapshot_attach_error()")
            reason = c.fetchone()[0] or ""
            check("an unknown snapshot is refused, with the reason", "no snapshot with id 999" in reason, reason)
    connection.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
