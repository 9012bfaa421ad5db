"""A bound on concurrent detections: as many run at once as there are cores, a few more wait,
and the rest are told to come back later instead of piling up in memory.

Who asks for a turn is a tenant: "uploads", or a live stream's client address. A free turn goes to
the waiting tenant that has used the least detection time lately, the oldest waiter among equals. A
tenant that sends costly frames (a big frame, the accurate profile, a threshold near 0) then waits
behind those that cost little, instead of taking turns as often as they do."""

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from vision.errors import ServerBusy

UPLOADS = "uploads"
# Detection time a tenant used counts half as much after this many seconds.
USAGE_HALF_LIFE_SECONDS = 10.0
# Past this many tenants remembered, those whose usage has decayed to nothing are forgotten.
REMEMBERED_TENANTS = 256


@dataclass
class Usage:
    seconds: float
    at: float  # time.monotonic() when `seconds` was last brought up to date

    def now(self, now: float) -> float:
        return self.seconds * math.exp2((self.at - now) / USAGE_HALF_LIFE_SECONDS)


@dataclass(frozen=True)
class Waiter:
    tenant: str
    handed: threading.Event  # set when the turn is handed to it


class DetectionSlots:
    def __init__(self, *, running: int, waiting: int) -> None:
        self.running = running
        self.waiting = waiting
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        self._free_turns = running
        self._turn_queue: list[Waiter] = []  # oldest first
        self._usage: dict[str, Usage] = {}

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
    def turn(self, tenant: str = UPLOADS) -> Iterator[None]:
        """For the image work alone (decode, detect, draw, encode): `running` at once. Storing and
        database writes happen outside it, so the cores do not idle while a slot waits on a disk.

        A finished turn is handed to a waiter directly: with a semaphore, the thread that just let go
        could take it straight back, and a stream asking for its next frame would starve uploads."""
        waiter = None
        with self._lock:
            if self._free_turns and not self._turn_queue:
                self._free_turns -= 1
            else:
                waiter = Waiter(tenant, threading.Event())
                self._turn_queue.append(waiter)
        if waiter is not None:
            waiter.handed.wait()
        started = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._charge(tenant, started)
                if self._turn_queue:
                    self._turn_queue.remove(next_waiter := self._least_used_waiter())
                    next_waiter.handed.set()
                else:
                    self._free_turns += 1

    def _charge(self, tenant: str, started: float) -> None:
        now = time.monotonic()
        usage = self._usage.get(tenant)
        self._usage[tenant] = Usage((usage.now(now) if usage else 0.0) + now - started, now)
        if len(self._usage) > REMEMBERED_TENANTS:
            self._usage = {name: usage for name, usage in self._usage.items() if usage.now(now) > 0.001}

    def _least_used_waiter(self) -> Waiter:
        now = time.monotonic()
        # min() keeps the first of equals: the oldest waiter.
        return min(self._turn_queue, key=lambda waiter: u.now(now) if (u := self._usage.get(waiter.tenant)) else 0.0)
