import sqlite3
from pathlib import Path

from facesite.sqlite import SQLITE_ENGINE, hold_write_ahead_log


def write_like_a_request(path: Path) -> None:
    """What Django does in a request under ASGI: connect, write, close."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    with connection:
        connection.execute("INSERT INTO detections VALUES ('a detection')")
    connection.close()


def test_a_held_connection_keeps_the_log_that_each_request_would_otherwise_checkpoint_and_delete(tmp_path):
    database = tmp_path / "db.sqlite3"
    sqlite3.connect(database).execute("CREATE TABLE detections (id TEXT)").connection.close()
    log = tmp_path / "db.sqlite3-wal"

    write_like_a_request(database)
    assert not log.exists()  # the last connection to close checkpointed the log and deleted it

    held = hold_write_ahead_log({"ENGINE": SQLITE_ENGINE, "NAME": database})
    try:
        write_like_a_request(database)
        write_like_a_request(database)
        assert log.exists()
        assert held.execute("SELECT COUNT(*) FROM detections").fetchone() == (3,)
    finally:
        held.close()


def test_other_databases_get_nothing_held():
    assert hold_write_ahead_log({"ENGINE": "django.db.backends.postgresql", "NAME": "faces"}) is None
