"""A bound on concurrent detections: as many run at once as there are cores, a few more wait,
and the rest are told to come back later instead of piling up in memory. Turns go first come,
first served, so that uploads and live streams (which ask for a turn per frame) share the cores."""

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from vision.errors import ServerBusy


class DetectionSlots:
    def __init__(self, *, running: int, waiting: int) -> None:
        self.running = running
        self.waiting = waiting
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        self._free_turns = running
        self._turn_queue: deque[threading.Event] = deque()  # those waiting for a turn, oldest first

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
        database writes happen outside it, so the cores do not idle while a slot waits on a disk.

        A finished turn is handed to the oldest waiter. With a semaphore, the thread that just let go
        could take it straight back: a stream asking again for its next frame would starve uploads."""
        handed = None
        with self._lock:
            if self._free_turns and not self._turn_queue:
                self._free_turns -= 1
            else:
                handed = threading.Event()
                self._turn_queue.append(handed)
        if handed is not None:
            handed.wait()
        try:
            yield
        finally:
            with self._lock:
                if self._turn_queue:
                    self._turn_queue.popleft().set()
                else:
                    self._free_turns += 1
