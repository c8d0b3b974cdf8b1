#!/usr/bin/python3
"""End-to-end test of snapshot_django: a Django project on SQLite, three
worker processes writing through the ORM on persistent connections, a
cron-style backup process, and restores while the workers stay connected.

    /usr/bin/python3 tests/django/run_e2e.py [--wal] [path/to/snapshot.so]

The extension: the argument, else $SNAPSHOT_EXTENSION, else
/work/main/build/snapshot.so. --wal: the database in WAL mode (default:
rollback journal, Django's default). Use Debian's /usr/bin/python3 (its sqlite3
module can load extensions) with python3-django. Prints "N passed, M failed"
last and exits non-zero on any failure.
"""
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "django"))
MANAGE = os.path.join(HERE, "manage.py")
WORKERS = 3
CRON_RUNS = 4

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


class Fatal(Exception):
    pass


def require(name, ok, detail=""):
    if not check(name, ok, detail):
        raise Fatal(name)


def manage(*args, stdin=None, timeout=40):
    t = time.monotonic()
    p = subprocess.run(
        [sys.executable, MANAGE, *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )
    print(f"      $ manage.py {' '.join(args)}  (rc {p.returncode}, {time.monotonic() - t:.2f} s)")
    for line in (p.stdout + p.stderr).strip().splitlines():
        print(f"      | {line}")
    return p


class Workers:
    def __init__(self, ctl):
        self.ctl, self.token, self.procs = ctl, 0, []

    def start(self):
        for w in range(WORKERS):
            log = open(os.path.join(self.ctl, f"worker-{w}.log"), "w")
            self.procs.append(
                subprocess.Popen([sys.executable, os.path.join(HERE, "worker.py"), str(w), self.ctl], stdout=log, stderr=log)
            )

    def pause(self, timeout=20):
        """Pauses (or probes) every worker; returns their acks once all answered."""
        self.token += 1
        token = f"pause-{self.token}"
        with open(os.path.join(self.ctl, "pause.tmp"), "w") as f:
            f.write(token)
        os.replace(os.path.join(self.ctl, "pause.tmp"), os.path.join(self.ctl, "pause"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            acks = [self.ack(w) for w in range(WORKERS)]
            if all(a and a.get("token") == token for a in acks):
                return acks
            dead = [p.args[2] for p in self.procs if p.poll() is not None]
            if dead:
                raise Fatal(f"worker(s) {dead} exited: {self.logs()}")
            time.sleep(0.01)
        raise Fatal(f"workers did not answer {token} within {timeout} s: {self.logs()}")

    def resume(self):
        os.remove(os.path.join(self.ctl, "pause"))

    def ack(self, w):
        try:
            with open(os.path.join(self.ctl, f"ack-{w}.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def logs(self):
        out = []
        for w in range(WORKERS):
            with open(os.path.join(self.ctl, f"worker-{w}.log")) as f:
                out.append(f"worker {w}: {f.read()[-2000:]}")
        return "\n".join(out)

    def stop(self, timeout=20):
        open(os.path.join(self.ctl, "stop"), "w").close()
        codes = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
        return codes


def wait_for_ops(workers, before, min_ops, seconds):
    """Lets the workers run at least `seconds` and until each did min_ops more."""
    workers.resume()
    time.sleep(seconds)
    deadline = time.monotonic() + 15
    while True:
        acks = workers.pause()
        if all(a["ops"] - b["ops"] >= min_ops for a, b in zip(acks, before)) or time.monotonic() > deadline:
            return acks
        workers.resume()
        time.sleep(0.2)


def run(tmp):
    db_path = os.path.join(tmp, "db.sqlite3")
    store = os.path.join(tmp, "store")  # SNAPSHOT_DIR, like the old scripts' DB_BACKUP_DIR
    ctl = os.path.join(tmp, "ctl")
    os.makedirs(store)
    os.makedirs(ctl)
    os.environ.update(
        E2E_DB_PATH=db_path,
        SNAPSHOT_DIR=store,
        DJANGO_SETTINGS_MODULE="e2eproject.settings",
        PYTHONDONTWRITEBYTECODE="1",
    )
    os.environ["PYTHONPATH"] = os.pathsep.join([HERE, PACKAGE_DIR] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))

    # 1. migrate takes a pre-migrate snapshot (SNAPSHOT_DIR is honoured).
    p = manage("migrate", "--no-input")
    require("migrate succeeds", p.returncode == 0, p.stderr)
    m = re.search(r"to (\S+) as snapshot (\d+) \(label 'pre-migrate'", p.stdout)
    check("migrate printed a pre-migrate snapshot in SNAPSHOT_DIR", m is not None and m.group(1) == store, p.stdout)
    p = manage("migrate", "--no-input")
    check("a migrate with nothing to apply takes no snapshot", p.returncode == 0 and "pre-migrate" not in p.stdout)
    p = manage("makemigrations", "--check", "--dry-run")
    check("committed migrations match the models", p.returncode == 0, p.stdout + p.stderr)

    # The test process is a Django process too, with its own persistent connection.
    sys.path[:0] = [HERE, PACKAGE_DIR]
    import django

    django.setup()
    from django.db import connection, transaction

    from annotations.models import Annotation, Document

    def snapshots():
        with connection.cursor() as c:
            c.execute("SELECT id, label FROM snapshot_list")
            return c.fetchall()

    def digest():
        with transaction.atomic():
            docs = list(Document.objects.order_by("pk").values_list("pk", "name", "text"))
            anns = list(
                Annotation.objects.order_by("pk").values_list("pk", "document_id", "user_id", "value", "start", "end", "validated")
            )
        return {
            "documents": len(docs),
            "annotations": len(anns),
            "validated": sum(a[-1] for a in anns),
            "sha256": hashlib.sha256(repr((docs, anns)).encode()).hexdigest()[:16],
        }

    def counts(d):
        return {k: d[k] for k in ("documents", "annotations", "validated")}

    with connection.cursor() as c:
        mode = c.execute("PRAGMA journal_mode").fetchone()[0]
    want = os.environ.get("E2E_JOURNAL_MODE", "delete")
    check(f"the database is in journal_mode={want}", mode == want, mode)
    check("snapshot_list has the pre-migrate snapshot", [l for _, l in snapshots()] == ["pre-migrate"], snapshots())

    # 2. Workers write while a cron-style process backs up every 0.5 s.
    workers = Workers(ctl)
    workers.start()
    try:
        cron = subprocess.run(
            ["bash", "-c", f'for i in $(seq {CRON_RUNS}); do "$0" "$1" snapshot_backup --label cron || exit 1; sleep 0.5; done',
             sys.executable, MANAGE],
            capture_output=True, text=True, timeout=60,
        )
        lines = cron.stdout.strip().splitlines()
        print("      cron: " + "\n      cron: ".join(lines + cron.stderr.strip().splitlines()))
        check(f"cron backups succeeded while workers wrote ({CRON_RUNS} log lines)", cron.returncode == 0 and len(lines) == CRON_RUNS)
        check(
            "each backup log line names database, store, id, pages_new, bytes_new and the restore command",
            all(re.fullmatch(rf"Backed up {re.escape(db_path)} to {re.escape(store)} as snapshot (\d+) \(label 'cron', "
                             r"pages_new \d+, bytes_new \d+\); to restore it: python3 \S*manage\.py snapshot_restore \1", l)
                for l in lines),
        )
        acks = workers.pause()
        check("every worker wrote during the backups", all(a["ops"] > 0 for a in acks), acks)
        with connection.cursor() as c:
            tracking = c.execute("SELECT snapshot_tracking()").fetchone()[0]
        check("every Django connection writes through the snapshot VFS (the next backup reads only changed pages)",
              tracking.startswith("tracked: "), tracking)

        # 3. Checkpoint: workers paused, record the data, back up.
        recorded = digest()
        print(f"      recorded: {recorded}")
        p = manage("snapshot_backup", "--label", "checkpoint")
        m = re.search(r"as snapshot (\d+)", p.stdout)
        require("checkpoint backup", p.returncode == 0 and m is not None, p.stderr)
        checkpoint = int(m.group(1))

        # 4. More writes after the checkpoint.
        acks = wait_for_ops(workers, acks, min_ops=5, seconds=1.0)
        later = digest()
        print(f"      later:    {later}")
        check("workers changed the data after the checkpoint", later["sha256"] != recorded["sha256"] and later["documents"] > recorded["documents"])

        # 5. Restore, first declined, then confirmed; workers stay connected (paused).
        before = snapshots()
        p = manage("snapshot_restore", stdin="n\n")
        check("an unconfirmed restore changes nothing", p.returncode != 0 and digest() == later and snapshots() == before
              and f"snapshot {checkpoint} " in p.stdout, p.stdout + p.stderr)
        p = manage("snapshot_restore", "--yes")
        m = re.search(r"The replaced state is snapshot (\d+) \(pre-restore\); to undo: python3 \S*manage\.py snapshot_restore (\d+)", p.stdout)
        require("snapshot_restore --yes restores the latest snapshot (the checkpoint)",
                p.returncode == 0 and f"Restored snapshot {checkpoint} " in p.stdout and m is not None, p.stdout + p.stderr)
        pre_restore = int(m.group(1))
        check("it prints the pre-restore snapshot that undoes it", int(m.group(2)) == pre_restore and pre_restore > checkpoint)
        restored = digest()
        check("the restored data equals what the checkpoint captured", restored == recorded, f"{restored} != {recorded}")
        acks = workers.pause()  # a probe: what each worker's own open connection sees now
        check("every worker's open connection sees the restored data",
              all(a["view"] == counts(recorded) for a in acks), [a["view"] for a in acks])
        p = manage("check")
        check("manage.py check passes after the restore", p.returncode == 0, p.stderr)

        # 6. Undo with the printed pre-restore snapshot, then back to the checkpoint.
        p = manage("snapshot_restore", str(pre_restore), "--yes")
        check("restoring the pre-restore snapshot undoes the restore", p.returncode == 0 and digest() == later)
        p = manage("snapshot_restore", str(checkpoint), "--yes")
        check("restoring the checkpoint by id", p.returncode == 0 and digest() == recorded)

        # 6b. Restore to a moment: the checkpoint's time plus 1 ms, written with
        # a +02:00 offset, names the checkpoint (the pre-restore after it is
        # later); an earlier moment than any snapshot, or a malformed one, changes nothing.
        p = manage("snapshot_restore", str(pre_restore), "--yes")
        require("back to the later state", p.returncode == 0 and digest() == later)
        with connection.cursor() as c:
            created = c.execute("SELECT created FROM snapshot_list WHERE id = %s", [checkpoint]).fetchone()[0]
            first = c.execute("SELECT min(created) FROM snapshot_list").fetchone()[0]
        at = datetime.datetime.fromisoformat(created.replace("Z", "+00:00")) + datetime.timedelta(milliseconds=1)
        at = at.astimezone(datetime.timezone(datetime.timedelta(hours=2))).isoformat(timespec="milliseconds")
        before = snapshots()
        p = manage("snapshot_restore", "--at", at, "--yes")
        check(f"snapshot_restore --at {at} restores the checkpoint",
              p.returncode == 0 and f"Restored snapshot {checkpoint} " in p.stdout and digest() == recorded,
              p.stdout + p.stderr)
        p = manage("snapshot_restore", str(checkpoint), "--at", at, "--yes")
        check("an id and --at together are refused", p.returncode != 0 and "not both" in p.stderr, p.stderr)
        early = (datetime.datetime.fromisoformat(first.replace("Z", "+00:00")) - datetime.timedelta(seconds=1)).isoformat()
        for bad, why in ((early, "no snapshot was taken at or before"), ("2026-02-30 10:00", "day 30 does not exist")):
            p = manage("snapshot_restore", "--at", bad, "--yes")
            check(f"snapshot_restore --at {bad!r} is refused ({why}) and changes nothing",
                  p.returncode != 0 and why in p.stderr and digest() == recorded and len(snapshots()) == len(before) + 1,
                  p.stdout + p.stderr)

        # 7. Workers resume on their old connections.
        acks2 = wait_for_ops(workers, acks, min_ops=5, seconds=1.0)
        check("every worker resumed writing after the restores", all(b["ops"] - a["ops"] >= 5 for a, b in zip(acks, acks2)),
              [(a["ops"], b["ops"]) for a, b in zip(acks, acks2)])
        check("on the same persistent connection", all(a["connection"] == a["connection_now"] for a in acks2))
        final = digest()
        check("the new writes landed on top of the restored data", final["documents"] > recorded["documents"])
    finally:
        codes = workers.stop()
    final_acks = [workers.ack(w) for w in range(WORKERS)]
    check("workers exited cleanly with no errors",
          codes == [0] * WORKERS and all(a and a["token"] == "stopped" and a["errors"] == 0 for a in final_acks),
          f"exit codes {codes}; {final_acks}\n{workers.logs()}")
    print(f"      worker ops {[a['ops'] for a in final_acks]}, locked retries {[a['locked_retries'] for a in final_acks]}")

    # 8. Verify, list, prune, and damage detection.
    p = manage("snapshot_verify")
    check("snapshot_verify: ok", p.returncode == 0 and p.stdout.strip().endswith(": ok"), p.stdout + p.stderr)
    p = manage("snapshot_list")
    labels = re.findall(r"^\s*\d+\s+\S+\s+(\S+)", p.stdout, re.M)
    expected = ["pre-migrate"] + ["cron"] * CRON_RUNS + ["checkpoint"] + ["pre-restore"] * 5
    check("snapshot_list shows every snapshot", p.returncode == 0 and labels == expected, f"{labels} != {expected}")
    p = manage("snapshot_prune", "--policy", "last 1")
    check("snapshot_prune --policy keeps labelled snapshots the policy does not name",
          p.returncode == 0 and "pruned 0 " in p.stdout and [l for _, l in snapshots()] == expected, p.stdout + p.stderr)
    p = manage("snapshot_prune", "--policy", "last 2, label cron")
    expected = ["pre-migrate"] + ["cron"] * 2 + ["checkpoint"] + ["pre-restore"] * 5
    check("snapshot_prune --policy 'last 2, label cron' keeps the 2 newest cron snapshots",
          p.returncode == 0 and f"pruned {CRON_RUNS - 2} " in p.stdout and [l for _, l in snapshots()] == expected,
          p.stdout + p.stderr)
    p = manage("snapshot_prune", "--policy", "dayly 7")
    check("a malformed policy is refused naming the rule", p.returncode != 0 and "'dayly 7'" in p.stderr, p.stderr)
    p = manage("snapshot_prune", "--keep-last", "3", "--keep-days", "0")
    check("snapshot_prune keeps the newest 3", p.returncode == 0 and f"pruned {len(expected) - 3} " in p.stdout
          and len(snapshots()) == 3, p.stdout + p.stderr)
    p = manage("snapshot_verify")
    check("snapshot_verify after prune: ok", p.returncode == 0, p.stderr)
    packs = sorted((os.path.join(store, "packs", f) for f in os.listdir(os.path.join(store, "packs"))), key=os.path.getsize)
    with open(packs[-1], "r+b") as f:  # flip a byte in the middle of the largest pack
        f.seek(os.path.getsize(packs[-1]) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    p = manage("snapshot_verify")
    check("snapshot_verify exits non-zero on a damaged store", p.returncode != 0 and "snapshot_verify" in p.stderr, p.stderr)


def main():
    args = [a for a in sys.argv[1:] if a != "--wal"]
    if "--wal" in sys.argv[1:]:
        os.environ["E2E_JOURNAL_MODE"] = "wal"  # see annotations/apps.py
    so = args[0] if args else os.environ.get("SNAPSHOT_EXTENSION") or "/work/main/build/snapshot.so"
    so = os.path.abspath(so)
    if not os.path.exists(so):
        print(f"no extension at {so}; build it: cmake -S . -B build && cmake --build build --target snapshot")
        print("0 passed, 1 failed")
        return 1
    os.environ["SNAPSHOT_EXTENSION"] = so
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="snapshot-django-e2e-")
    try:
        run(tmp)
    except Fatal as e:
        print(f"      stopped: {str(e)[:3000]}")  # require() printed its FAIL; a worker's failure is printed here
    except Exception as e:  # an error in the test itself is a failure too
        import traceback

        traceback.print_exc()
        check(f"no unexpected error ({type(e).__name__}: {e})", False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - t0
    # Not a check: how long a run takes depends on the machine (ctest's
    # TIMEOUT bounds a hung run).
    print(f"      took {elapsed:.1f} s")
    check("temp dir removed", not os.path.exists(tmp))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
