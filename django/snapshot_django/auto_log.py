"""Automatic snapshots' failures in the Django log.

An automatic snapshot runs on a background thread of the extension, never in
a request, so its errors (a full disk, a store that vanished) cannot reach
the app; SQL's snapshot_status() keeps the last one. So do the uploads to the
store's remote (SNAPSHOT_REMOTE) after each snapshot. This module reads it
from the app's own processes and logs, on the logger "snapshot_django":

    ERROR    automatic snapshots of /srv/db.sqlite3 are failing (since ..., pid 4242): <the error>
    WARNING  automatic snapshots of /srv/db.sqlite3 work again: snapshot 812 at ...
    ERROR    copies of /srv/db.sqlite3 to s3://bucket/app are failing (last try ...; 3 snapshots not there yet, ...): <the error>
    WARNING  copies of /srv/db.sqlite3 to s3://bucket/app work again: it holds snapshot 815 (pushed at ...)

once per new error (the same error again is not logged again) and once at
the recovery. Cheap: it looks at most once every SNAPSHOT_STATUS_CHECK_SECONDS
(default 10) per process, after a request on a connection that is still open
(request_finished) or when Django opens a connection (connection_created),
with one SELECT snapshot_status(). It never raises into the app: a check that
fails is logged at DEBUG and tried again later.
"""
import json
import logging
import threading
import time

from django.conf import settings
from django.db import connections

logger = logging.getLogger("snapshot_django")

_lock = threading.Lock()
_next_check = 0.0
_logged = {}  # database path -> the error last logged while failing (None: none)


def check_seconds():
    return float(getattr(settings, "SNAPSHOT_STATUS_CHECK_SECONDS", 10))


def _due():
    """Whether this process should look now; at most once per check_seconds()."""
    global _next_check
    now = time.monotonic()
    if now < _next_check or not _lock.acquire(blocking=False):
        return False
    try:
        if now < _next_check:
            return False
        _next_check = now + check_seconds()
        return True
    finally:
        _lock.release()


def report(status):
    """Logs what changed since the last report for the database of one snapshot_status() object."""
    database = status.get("database")
    error = status.get("last_error")
    error_at = status.get("last_error_at") or ""
    ok_at = status.get("last_auto_at") or ""
    # The times are fixed-width UTC ("2026-12-05T14:59:01.250Z"): compared as text.
    failing = bool(error) and error_at > ok_at
    before = _logged.get(database)
    if failing and error != before:
        _logged[database] = error
        logger.error(
            "automatic snapshots of %s are failing (since %s, pid %s): %s",
            database, error_at, status.get("last_error_pid"), error,
        )
    elif not failing and before is not None:
        _logged[database] = None
        logger.warning(
            "automatic snapshots of %s work again: snapshot %s at %s", database, status.get("last_auto_id"), ok_at
        )


def report_remote(status):
    """Logs what changed since the last report for the store's copy on object
    storage (the "remote" part of one snapshot_status() object): its
    background uploads run on a thread of the extension, so their errors
    (the server down, credentials refused) cannot reach the app either."""
    remote = status.get("remote")
    if not remote:
        return
    database, url = status.get("database"), remote.get("url")
    key = (database, "remote")
    error = remote.get("last_error")
    failing = bool(error) and (remote.get("last_error_at") or "") > (remote.get("last_push_at") or "")
    before = _logged.get(key)
    if failing and error != before:
        _logged[key] = error
        logger.error(
            "copies of %s to %s are failing (last try %s; %s snapshots not there yet, the oldest from %s): %s",
            database, url, remote.get("last_error_at"), remote.get("snapshots_not_remote"),
            remote.get("oldest_not_remote_created"), error,
        )
    elif not failing and before is not None:
        _logged[key] = None
        logger.warning(
            "copies of %s to %s work again: it holds snapshot %s (pushed at %s)",
            database, url, remote.get("newest_remote_id"), remote.get("last_push_at"),
        )


def check_raw(raw):
    """Reads snapshot_status() on one open sqlite3 connection and reports it; never raises."""
    try:
        row = raw.execute("SELECT snapshot_status()").fetchone()
        status = json.loads(row[0])
        report(status)
        report_remote(status)
    except Exception as e:  # a closed connection, a busy database: not the app's business
        logger.debug("snapshot_status() could not be read: %s", e)


def check_if_due(raw):
    """connection_created: a new connection (every request's, when connections are not kept)."""
    if _due():
        check_raw(raw)


def check_after_request(sender=None, **kwargs):
    """request_finished: the open SQLite connections of this thread (kept ones, CONN_MAX_AGE)."""
    try:
        if not _due():
            return
        for connection in connections.all():  # wrappers of this thread; none is opened here
            raw = getattr(connection, "connection", None)
            if connection.vendor != "sqlite" or raw is None or connection.in_atomic_block:
                continue
            if connection.is_in_memory_db():
                continue
            check_raw(raw)
    except Exception as e:
        logger.debug("automatic snapshot status check failed: %s", e)

