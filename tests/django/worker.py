#!/usr/bin/python3
"""An application process of the e2e test: writes through the ORM on one
persistent connection until told to stop.

    worker.py WORKER_ID CONTROL_DIR

Control files in CONTROL_DIR (written by run_e2e.py):
  pause   while it exists, the worker writes nothing and holds no transaction;
          each new token written into it is answered in ack-ID.json with the
          worker's counters and what its own connection sees (a probe).
  stop    the worker exits.
"""
import json
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "django")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "e2eproject.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import OperationalError, connection, transaction  # noqa: E402

from annotations.models import Annotation, Document  # noqa: E402

WID, CTL = int(sys.argv[1]), sys.argv[2]
stats = {"worker": WID, "ops": 0, "locked_retries": 0, "errors": 0, "last_error": None}
rng = random.Random(WID)


def retry(fn):
    """Runs fn (a whole transaction) again while the database is locked."""
    for _ in range(500):
        try:
            return fn()
        except OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            stats["locked_retries"] += 1
            time.sleep(0.005 + rng.random() * 0.03)
    raise RuntimeError("database still locked after 500 attempts")


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def write_json(path, data):
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


def view():
    with transaction.atomic():
        return {
            "documents": Document.objects.count(),
            "annotations": Annotation.objects.count(),
            "validated": Annotation.objects.filter(validated=True).count(),
        }


def create_document(user):
    with transaction.atomic():
        n = stats["ops"]
        doc = Document.objects.create(name=f"w{WID}-{n}", text=f"text of document {n} by worker {WID} " * 20)
        Annotation.objects.bulk_create(
            Annotation(document=doc, user=user, value=f"concept-{rng.randrange(1000)}", start=i * 10, end=i * 10 + 5)
            for i in range(rng.randrange(1, 4))
        )


def validate_some():
    with transaction.atomic():
        ids = list(Annotation.objects.filter(validated=False).values_list("id", flat=True)[:50])
        if ids:
            Annotation.objects.filter(id__in=rng.sample(ids, min(3, len(ids)))).update(validated=True)


def main():
    user = retry(lambda: User.objects.get_or_create(username=f"worker{WID}")[0])
    connection.ensure_connection()
    stats["connection"] = id(connection.connection)  # persistent: the same object all along
    answered = None
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(CTL, "stop")) and time.monotonic() < deadline:
        token = read(os.path.join(CTL, "pause"))
        if token is not None:
            if token != answered:
                stats["connection_now"] = id(connection.connection)
                write_json(os.path.join(CTL, f"ack-{WID}.json"), dict(stats, token=token, view=retry(view)))
                answered = token
            time.sleep(0.01)
            continue
        try:
            retry(lambda: create_document(user) if rng.random() < 0.6 else validate_some())
            stats["ops"] += 1
        except Exception as e:  # counted; the test requires none
            stats["errors"] += 1
            stats["last_error"] = f"{type(e).__name__}: {e}"
            time.sleep(0.05)
        time.sleep(0.002)
    stats["connection_now"] = id(connection.connection)
    write_json(os.path.join(CTL, f"ack-{WID}.json"), dict(stats, token="stopped"))


if __name__ == "__main__":
    main()
