"""A bound on concurrent detections: as many run at once as there are cores, a few more wait,
and the rest are told to come back later instead of piling up in memory."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from vision.errors import ServerBusy


class DetectionSlots:
    def __init__(self, *, running: int, waiting: int) -> None:
        self.running = running
        self.waiting = waiting
        self._turns = threading.BoundedSemaphore(running)
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """For a whole upload: refused with ServerBusy when `running` + `waiting` are already in."""
        with self._lock:
            if self._admitted >= self.running + self.waiting:
                raise ServerBusy(
                    f"The server is busy: it runs {self.running} at once and keeps {self.waiting} more waiting, "
                    "and all are taken; try again in a moment."
                )
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    @contextmanager
    def turn(self) -> Iterator[None]:
        """For the image work alone (decode, detect, draw, encode): `running` at once. Storing and
        database writes happen outside it, so the cores do not idle while a slot waits on a disk."""
        with self._turns:
            yield
