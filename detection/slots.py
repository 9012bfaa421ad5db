"""A bound on concurrent detections: as many run at once as there are cores, a few more wait,
and the rest are told to come back later instead of piling up in memory."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from detection.errors import ServerBusy


class DetectionSlots:
    def __init__(self, *, running: int, waiting: int) -> None:
        self.running = running
        self.waiting = waiting
        self._turns = threading.BoundedSemaphore(running)
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self.running + self.waiting:
                raise ServerBusy(f"The server is busy with {self._admitted} detections; try again in a moment.")
            self._admitted += 1
        try:
            with self._turns:
                yield
        finally:
            with self._lock:
                self._admitted -= 1
