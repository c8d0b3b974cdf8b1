#!/usr/bin/python3
"""End-to-end test of snapshot_django's remote copies against the real
object store: machine A, a Django project with SNAPSHOT_REMOTE in its
settings, takes snapshots and `manage.py snapshot_push`es them; machine B,
an empty directory with the same settings, gets the database back with
`manage.py snapshot_restore --from s3://...` (a new file), then restores an
older snapshot of the remote into its live database and undoes that.
Failures must be clear errors with a non-zero exit that change nothing: no
remote, wrong credentials, a remote holding another store, a journal left by
a database that is gone, an empty remote. Background uploads that fail (the
credentials refused), then work again, must each be logged once.

    eval "$(tools/object-store.sh start)"
    /usr/bin/python3 tests/django/remote_e2e.py path/to/snapshot.so

Exits 77 (ctest: skipped) when AWS_ENDPOINT_URL and SNAPSHOT_REMOTE are not
set or the server does not answer. Works under a prefix of its own below
$SNAPSHOT_REMOTE and removes it at the end. Same conventions as run_e2e.py
(whose helpers it uses): Debian's python3 with python3-django; prints
"N passed, M failed" last; non-zero on failure.
"""
import contextlib
import filecmp
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_e2e  # noqa: E402  (check, manage, the package paths)
from run_e2e import check, manage  # noqa: E402

SKIPPED = 77


def server_answers(endpoint):
    """Any HTTP answer (an S3 error too) means a server listens there."""
    try:
        urllib.request.urlopen(endpoint, timeout=10).close()
    except urllib.error.HTTPError:
        pass
    except (urllib.error.URLError, OSError):
        return False
    return True


@contextlib.contextmanager
def environment(**changes):
    """os.environ with `changes` (None: unset) for the manage.py processes started inside."""
    # Only the names changed are touched: the extension's upload thread
    # reads the environment meanwhile.
    saved = {name: os.environ.get(name) for name in changes}

    def put(values):
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    put(changes)
    try:
        yield
    finally:
        put(saved)


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def at(self, level):
        return [r.getMessage() for r in self.records if r.levelno == level]


def document_names(db_path):
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return sorted(r[0] for r in con.execute("SELECT name FROM annotations_document"))
    finally:
        con.close()


class Swift:
    """The test server's own API (Swift: tempauth's user is the S3 access
    key), to list and delete objects behind the S3 interface's back."""

    def __init__(self, endpoint):
        auth = urllib.request.Request(f"{endpoint}/auth/v1.0", headers={
            "X-Auth-User": os.environ["AWS_ACCESS_KEY_ID"], "X-Auth-Key": os.environ["AWS_SECRET_ACCESS_KEY"]})
        with urllib.request.urlopen(auth, timeout=30) as r:
            self.token, self.storage = r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]

    def call(self, method, path):
        request = urllib.request.Request(f"{self.storage}/{path}", method=method, headers={"X-Auth-Token": self.token})
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.read()

    def keys(self, url):
        """The names of the objects under s3://bucket/prefix, with the bucket."""
        bucket, _, prefix = url[len("s3://"):].partition("/")
        listing = self.call("GET", f"{bucket}?format=json&prefix={urllib.parse.quote(prefix + '/')}")
        return [f"{bucket}/{o['name']}" for o in json.loads(listing)]

    def delete(self, key):
        self.call("DELETE", urllib.parse.quote(key))


def remove_prefix(endpoint, url):
    """Best effort: deletes the objects under `url`."""
    try:
        swift = Swift(endpoint)
        for key in swift.keys(url):
            swift.delete(key)
    except Exception as e:  # leftovers are only the test server's
        print(f"      (could not remove {url}: {e})")


def run(tmp, url):
    machine_a, machine_b, machine_c = (os.path.join(tmp, m) for m in ("a", "b", "c"))
    for d in (machine_a, machine_b, machine_c):
        os.makedirs(os.path.join(d, "store"))
    db_a, db_b = os.path.join(machine_a, "db.sqlite3"), os.path.join(machine_b, "db.sqlite3")
    os.environ.update(E2E_DB_PATH=db_a, SNAPSHOT_DIR=os.path.join(machine_a, "store"),
                      DJANGO_SETTINGS_MODULE="e2eproject.settings", PYTHONDONTWRITEBYTECODE="1")
    os.environ["PYTHONPATH"] = os.pathsep.join([HERE, run_e2e.PACKAGE_DIR])
    # Only the Django setting names a remote here (the extension would also
    # take $SNAPSHOT_REMOTE).
    os.environ.pop("SNAPSHOT_REMOTE", None)

    p = manage("snapshot_push")
    check("with no remote configured, snapshot_push fails and says how to set one",
          p.returncode != 0 and "SNAPSHOT_REMOTE" in p.stderr, p.stderr)

    # Machine A: snapshots first, then SNAPSHOT_REMOTE in settings.py: the
    # first process that connects with it makes it the store's remote. This
    # process runs without it and runs the commands whose exit code is not
    # what is tested.
    sys.path[:0] = [HERE, run_e2e.PACKAGE_DIR]
    import django

    django.setup()
    from django.core.management import CommandError, call_command
    from django.db import connection

    from annotations.models import Document
    from snapshot_django.db import backup, query

    def push_here():
        out = io.StringIO()
        call_command("snapshot_push", stdout=out)
        return out.getvalue()

    call_command("migrate", verbosity=0)
    Document.objects.bulk_create(Document(name=f"a{i:02}", text="x" * 2000) for i in range(40))
    first = backup(connection, "first").id
    names_first = sorted(Document.objects.values_list("name", flat=True))
    connection.close()
    with environment(E2E_SNAPSHOT_REMOTE=url):
        p = manage("snapshot_push")
    m = re.search(r"uploaded (\d+) files", p.stdout)
    check("snapshot_push uploads the store and says what", p.returncode == 0 and m is not None and int(m.group(1)) >= 3
          and url in p.stdout and f"every snapshot up to {first}" in p.stdout, p.stdout + p.stderr)
    check("the setting became the store's remote", query(connection, "SELECT snapshot_remote()")[0][0] == url)
    where = query(connection, "SELECT DISTINCT location FROM snapshot_list")
    check("snapshot_list says every snapshot is in both places", where == [("both",)], where)
    out = io.StringIO()
    call_command("snapshot_list", stdout=out)
    rows = [line.split() for line in out.getvalue().splitlines()[2:]]
    check("manage.py snapshot_list shows where", rows and all(r[-1] == "both" for r in rows), out.getvalue())
    out = push_here()
    check("a second snapshot_push sends nothing", "already held every file" in out, out)
    out = io.StringIO()
    call_command("snapshot_verify", "--from", stdout=out)
    check("snapshot_verify --from checks the store's remote copy", out.getvalue().strip() == f"verify {url}: ok",
          out.getvalue())

    # Now with a remote, this process's snapshots upload in the background
    # too; snapshot_push returns once the remote holds them, either way.
    Document.objects.filter(name="a00").delete()
    Document.objects.bulk_create(Document(name=f"b{i:02}", text="y" * 2000) for i in range(10))
    second = backup(connection, "second").id
    names_second = sorted(Document.objects.values_list("name", flat=True))
    connection.close()
    try:
        with environment(AWS_SECRET_ACCESS_KEY="wrong"):
            out = push_here()
        check("wrong credentials: snapshot_push fails", False, out)
    except CommandError as e:
        check("wrong credentials: snapshot_push fails, naming them", "refused the credentials" in str(e), str(e))
    out = push_here()
    check("the next push holds the new snapshot", f"every snapshot up to {second}" in out, out)

    # Machine B: an empty directory, the same settings.
    def on_b(*args, stdin=None):
        with environment(E2E_DB_PATH=db_b, SNAPSHOT_DIR=os.path.join(machine_b, "store"), E2E_SNAPSHOT_REMOTE=url):
            return manage(*args, stdin=stdin, timeout=120)

    p = on_b("snapshot_restore", "--from", url, stdin="n\n")
    check("declining the prompt on a new machine creates nothing",
          p.returncode != 0 and "nothing was changed" in p.stderr and sorted(os.listdir(machine_b)) == ["store"],
          p.stdout + p.stderr)
    p = on_b("snapshot_restore", "--from", url, stdin="y\n")
    check("snapshot_restore --from on a new machine creates the database from the latest snapshot",
          p.returncode == 0 and f"snapshot {second} of {url}" in p.stdout and os.path.exists(db_b), p.stdout + p.stderr)
    check("the restored database is byte-exact", os.path.exists(db_b) and filecmp.cmp(db_a, db_b, shallow=False))
    check("nothing else is left in the directory", sorted(os.listdir(machine_b)) == ["db.sqlite3", "store"],
          os.listdir(machine_b))

    # --from without a value: SNAPSHOT_REMOTE; an older snapshot into the live database.
    p = on_b("snapshot_restore", "--from", "--yes", str(first))
    m = re.search(r"to undo: .* snapshot_restore (\d+)", p.stdout)
    check("snapshot_restore --from ID into the live database says how to undo it", p.returncode == 0 and m is not None,
          p.stdout + p.stderr)
    check("the live database holds the older snapshot", document_names(db_b) == names_first)
    check("no fetched file is left behind", not [n for n in os.listdir(machine_b) if "remote" in n],
          os.listdir(machine_b))
    if m:
        p = on_b("snapshot_restore", m.group(1), "--yes")
        check("the undo brings back the state before", p.returncode == 0 and document_names(db_b) == names_second,
              p.stdout + p.stderr)
    p = on_b("snapshot_push")
    check("machine B's own store cannot push over machine A's copy: a clear error",
          p.returncode != 0 and "another snapshot store" in p.stderr, p.stderr)

    # A journal left by a database that is gone would be rolled into the new file.
    db_c = os.path.join(machine_c, "db.sqlite3")
    with open(db_c + "-journal", "wb") as f:
        f.write(b"\0" * 512)
    with environment(E2E_DB_PATH=db_c, SNAPSHOT_DIR=os.path.join(machine_c, "store")):
        p = manage("snapshot_restore", "--from", url, "--yes")
    check("a leftover journal is refused, named, and nothing is created",
          p.returncode != 0 and db_c + "-journal" in p.stderr and not os.path.exists(db_c), p.stderr)
    os.remove(db_c + "-journal")

    # A remote with nothing in it.
    empty = f"{url}-empty"
    with environment(E2E_DB_PATH=db_c, SNAPSHOT_DIR=os.path.join(machine_c, "store")):
        p = manage("snapshot_restore", "--from", empty, "--yes")
    check("restoring from an empty remote fails clearly and leaves nothing",
          p.returncode != 0 and empty in p.stderr and "Traceback" not in p.stderr
          and sorted(os.listdir(machine_c)) == ["store"], p.stderr + str(os.listdir(machine_c)))

    # --at names a moment of the remote's history (on machine A, in this process).
    created = query(connection, "SELECT created FROM snapshot_list WHERE id = %s", [first])[0][0]
    out = io.StringIO()
    call_command("snapshot_restore", "--from", url, "--at", created, "--yes", stdout=out)
    connection.close()
    check("--from --at restores the snapshot holding that moment's state", f"Found snapshot {first} of {url}" in
          out.getvalue() and sorted(Document.objects.values_list("name", flat=True)) == names_first, out.getvalue())

    # Background uploads failing, then working again, in the Django log.
    from snapshot_django import auto_log

    log = Records()
    logging.getLogger("snapshot_django").addHandler(log)

    def check_status():
        connection.ensure_connection()
        auto_log.check_raw(connection.connection)
        connection.close()

    def wait_for(done, seconds=60):
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            time.sleep(0.2)
            check_status()
        return done()

    with environment(AWS_SECRET_ACCESS_KEY="wrong"):
        Document.objects.create(name="c00", text="z")
        backup(connection, "third")  # uploads in the background, and fails
        connection.close()
        logged = wait_for(lambda: log.at(logging.ERROR))
    errors = log.at(logging.ERROR)
    check("a failing background upload is logged as an error, naming the database, the remote and the reason",
          logged and db_a in errors[0] and url in errors[0] and "refused the credentials" in errors[0], errors)
    check_status()
    check("the same error is logged once", len(log.at(logging.ERROR)) == 1, log.at(logging.ERROR))
    push_here()
    # A background retry that read the wrong key before it was put back may
    # still fail after this push; its next try then succeeds.
    wait_for(lambda: log.at(logging.WARNING))
    recovered = log.at(logging.WARNING)
    check("the recovery is logged", len(recovered) == 1 and url in recovered[0] and "work again" in recovered[0],
          [r.getMessage() for r in log.records])

    # SNAPSHOT_REMOTE_KEY_FILE: an encrypted copy (a prefix of its own: a
    # remote is encrypted or not from its first push), restored with the
    # key and refused without it.
    key_file = os.path.join(tmp, "app.key")
    with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(os.urandom(32).hex())
    sealed = f"{url}-encrypted"
    # From a copy of machine A: this process's background uploads (machine
    # A's store, no key) must not race the keyed push to the new prefix, as
    # they would once the setting made it the store's remote.
    machine_f = os.path.join(tmp, "f")
    os.makedirs(machine_f)
    shutil.copy2(db_a, os.path.join(machine_f, "db.sqlite3"))
    shutil.copytree(os.path.join(machine_a, "store"), os.path.join(machine_f, "store"))
    with environment(E2E_SNAPSHOT_REMOTE=sealed, E2E_SNAPSHOT_REMOTE_KEY_FILE=key_file,
                     E2E_DB_PATH=os.path.join(machine_f, "db.sqlite3"), SNAPSHOT_DIR=os.path.join(machine_f, "store")):
        p = manage("snapshot_push")
        check("with SNAPSHOT_REMOTE_KEY_FILE, snapshot_push uploads an encrypted copy",
              p.returncode == 0 and "uploaded" in p.stdout and sealed in p.stdout, p.stdout + p.stderr)
        d = os.path.join(tmp, "d")
        os.makedirs(os.path.join(d, "store"))
        with environment(E2E_DB_PATH=os.path.join(d, "db.sqlite3"), SNAPSHOT_DIR=os.path.join(d, "store")):
            p = manage("snapshot_restore", "--from", "--yes")
        check("with the key, snapshot_restore --from restores it byte-exact", p.returncode == 0
              and filecmp.cmp(db_a, os.path.join(d, "db.sqlite3"), shallow=False), p.stdout + p.stderr)
    e = os.path.join(tmp, "e")
    os.makedirs(os.path.join(e, "store"))
    with environment(E2E_DB_PATH=os.path.join(e, "db.sqlite3"), SNAPSHOT_DIR=os.path.join(e, "store")):
        p = manage("snapshot_restore", "--from", sealed, "--yes")
    check("without the key, the restore says so and creates nothing",
          p.returncode != 0 and "SNAPSHOT_REMOTE_KEY_FILE" in p.stderr and os.listdir(e) == ["store"],
          p.stderr + str(os.listdir(e)))

    # A pack deleted on the server: snapshot_verify --from names it.
    swift = Swift(os.environ["AWS_ENDPOINT_URL"])
    pack = next(k for k in swift.keys(url) if "/packs/" in k)
    swift.delete(pack)
    try:
        call_command("snapshot_verify", "--from", url, stdout=io.StringIO())
        check("snapshot_verify --from fails on a pack deleted on the server", False)
    except CommandError as e:
        check("snapshot_verify --from fails on a pack deleted on the server, naming it",
              os.path.basename(pack) in str(e), f"{pack}: {e}")


def main():
    args = sys.argv[1:]
    so = os.path.abspath(args[0] if args else os.environ.get("SNAPSHOT_EXTENSION") or "/work/main/build/snapshot.so")
    os.environ["SNAPSHOT_EXTENSION"] = so
    endpoint, remote = os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("SNAPSHOT_REMOTE")
    if not endpoint or not remote:
        print('skipped: no object store: run eval "$(tools/object-store.sh start)" first')
        return SKIPPED
    if not server_answers(endpoint):
        print(f'skipped: the object store at {endpoint} does not answer: run eval "$(tools/object-store.sh start)"')
        return SKIPPED
    url = f"{remote}/django-e2e-{uuid.uuid4().hex[:12]}"
    tmp = tempfile.mkdtemp(prefix="snapshot-django-remote-")
    try:
        run(tmp, url)
    except run_e2e.Fatal:
        pass
    except Exception as e:
        import traceback

        traceback.print_exc()
        check(f"no unexpected error ({type(e).__name__}: {e})", False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for prefix in (url, f"{url}-encrypted"):
            remove_prefix(endpoint, prefix)
    print(f"{run_e2e.passed} passed, {run_e2e.failed} failed")
    return 1 if run_e2e.failed else 0


if __name__ == "__main__":
    sys.exit(main())
