#!/usr/bin/python3
"""Automatic snapshots' failures in the Django log: a Django process serving
requests (each one a write) with SNAPSHOT_AUTO_SECONDS = 1; its store
vanishes (renamed away), so its automatic snapshots fail for real; then it
comes back. The log ("snapshot_django") must say each once: the failure,
then the recovery; every request must succeed throughout.

    /usr/bin/python3 tests/django/auto_e2e.py [--wal] path/to/snapshot.so

Prints "N passed, M failed" last; exits non-zero on any failure.
"""
import logging
import os
import shutil
import sys
import tempfile
import time

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
    return ok


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def at(self, level):
        return [r.getMessage() for r in self.records if r.levelno == level]


def run(tmp):
    db_path = os.path.join(tmp, "app.sqlite3")
    store = os.path.join(tmp, "store")
    os.makedirs(store)
    os.environ.update(E2E_DB_PATH=db_path, SNAPSHOT_DIR=store, E2E_AUTO_SECONDS="1",
                      DJANGO_SETTINGS_MODULE="e2eproject.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    log = Records()
    logging.getLogger("snapshot_django").addHandler(log)
    logging.getLogger("snapshot_django").setLevel(logging.INFO)
    call_command("migrate", verbosity=0)
    client = Client()
    statuses = []

    def request():
        statuses.append(client.get("/write").status_code)

    def serve_until(done, seconds):
        """Serves requests, 20 a second, until done() or `seconds` passed; returns done()."""
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            request()
            time.sleep(0.05)
        return done()

    def auto_snapshots():
        with connection.cursor() as c:
            return c.execute("SELECT count(*) FROM snapshot_list WHERE label = 'auto'").fetchone()[0]

    # 1. Working: automatic snapshots are taken, nothing is logged.
    check("automatic snapshots are taken while requests write", serve_until(lambda: auto_snapshots() > 0, 30))
    check("nothing logged while they work", not log.records, [r.getMessage() for r in log.records])

    # 2. The store vanishes: the automatic snapshots fail; the log says so once.
    os.rename(store, store + ".away")
    check("the failure is logged as an error", serve_until(lambda: log.at(logging.ERROR), 30), log.at(logging.ERROR))
    errors = log.at(logging.ERROR)
    check("the error names the database and says they are failing",
          errors and db_path in errors[0] and "are failing" in errors[0], errors)
    serve_until(lambda: False, 3)  # three more checks, the snapshots failing again
    check("the same error is logged once", len(log.at(logging.ERROR)) == 1, log.at(logging.ERROR))

    # 3. The store is back: the next automatic snapshot succeeds; the log says so once.
    os.rename(store + ".away", store)
    check("the recovery is logged", serve_until(lambda: log.at(logging.WARNING), 30), log.at(logging.WARNING))
    recovered = log.at(logging.WARNING)
    check("it names the database and says they work again",
          recovered and db_path in recovered[0] and "work again" in recovered[0], recovered)
    serve_until(lambda: False, 2)
    for r in log.records:
        print(f"      log: {r.levelname} {r.getMessage()}")
    check("one error and one recovery in all", len(log.records) == 2, [r.getMessage() for r in log.records])
    check(f"every request succeeded throughout ({len(statuses)})",
          statuses and all(s == 200 for s in statuses), sorted(set(statuses)))


def main():
    args = [a for a in sys.argv[1:] if a != "--wal"]
    if "--wal" in sys.argv[1:]:
        os.environ["E2E_JOURNAL_MODE"] = "wal"  # see annotations/apps.py
    so = os.path.abspath(args[0] if args else os.environ.get("SNAPSHOT_EXTENSION") or "/work/main/build/snapshot.so")
    if not os.path.exists(so):
        print(f"no extension at {so}")
        print("0 passed, 1 failed")
        return 1
    os.environ["SNAPSHOT_EXTENSION"] = so
    tmp = tempfile.mkdtemp(prefix="snapshot-auto-e2e-")
    try:
        run(tmp)
    except Exception as e:  # an error in the test itself is a failure too
        import traceback

        traceback.print_exc()
        check(f"no unexpected error ({type(e).__name__}: {e})", False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
