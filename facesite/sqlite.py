"""SQLite under the server: a connection held open for the process's life."""

import sqlite3

SQLITE_ENGINE = "django.db.backends.sqlite3"


def hold_write_ahead_log(database: dict) -> sqlite3.Connection | None:
    """A connection to `database` (a DATABASES entry), when it is SQLite, for the caller to keep open.

    Django closes its connection after every request (under ASGI each request has a thread of its
    own, so no connection outlives it), and when the last connection to a WAL database closes, SQLite
    checkpoints the log into the database and deletes it (https://sqlite.org/wal.html): writes and a
    sync to disk per request, for nothing. With this one open, no request's connection is the last.
    SQLite's own automatic checkpoints (every 1,000 pages of log) go on as usual."""
    if database["ENGINE"] != SQLITE_ENGINE:
        return None
    connection = sqlite3.connect(database["NAME"], check_same_thread=False)
    connection.execute("PRAGMA journal_mode").fetchone()  # opens the log and its shared memory
    return connection
