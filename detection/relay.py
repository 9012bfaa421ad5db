"""One member of the faces group per process, handing each broadcast to that process's /faces clients.

Channels' usual shape gives every websocket its own layer channel in the group: per message and
client, a copy, a queue, a task and a dispatch. At thousands of clients a process spent most of a
broadcast there (`make bench-load`, README). Here the process joins the group once, while it has
clients, and passes the text to each of them in turn.
"""

import asyncio
import contextlib
import logging
from typing import Protocol

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

# The Redis core layer forgets a member after its group_expiry (a day by default): rejoin well before.
REJOIN_SECONDS = 3600
RETRY_SECONDS = 1.0
# How long a new client waits for the process to join the group before it is accepted anyway.
JOIN_WAIT_SECONDS = 5.0
# Let the event loop serve requests between batches of a large broadcast.
CLIENTS_PER_TURN = 100


class Client(Protocol):
    async def relay(self, text: str) -> None: ...


class GroupRelay:
    def __init__(self, group: str) -> None:
        self.group = group
        self.clients: set[Client] = set()
        self.task: asyncio.Task | None = None
        self.first_attempt: asyncio.Future | None = None  # done once the task has tried to join

    async def join(self) -> None:
        """Returns once this process is in the group (from then on no broadcast is missed), or once
        joining failed or took JOIN_WAIT_SECONDS (the channel layer is out of reach): the relay keeps
        trying meanwhile, and its clients hear broadcasts again once it is in."""
        first_attempt = self.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(first_attempt), JOIN_WAIT_SECONDS)

    def start(self) -> asyncio.Future:
        """The relay's task, started unless it runs: the future of its first attempt to join."""
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.first_attempt = loop.create_future()
            self.task = asyncio.create_task(self.run(self.first_attempt))
        return self.first_attempt

    def add(self, client: Client) -> None:
        self.clients.add(client)
        # The last client may have left, stopping the relay, while this one was between join() and add().
        self.start()

    def discard(self, client: Client) -> None:
        self.clients.discard(client)
        if not self.clients and self.task is not None:
            self.task.cancel()  # it leaves the group on its way out
            self.task = self.first_attempt = None

    async def run(self, first_attempt: asyncio.Future) -> None:
        layer = get_channel_layer()
        try:
            channel = await self.enter(layer, first_attempt)
        finally:
            if not first_attempt.done():  # cancelled before its first attempt ended: nobody waits forever
                first_attempt.set_result(None)
        rejoining = asyncio.create_task(self.keep_joined(layer, channel))
        try:
            while True:
                try:
                    message = await layer.receive(channel)
                    await self.deliver(message["text"])
                except Exception:
                    logger.exception("relay of group %r failed; retrying", self.group)
                    await asyncio.sleep(RETRY_SECONDS)
                    rejoining.cancel()  # at once: a Redis that restarted has forgotten the group
                    rejoining = asyncio.create_task(self.keep_joined(layer, channel, first_wait=0))
        finally:
            rejoining.cancel()
            try:
                await layer.group_discard(self.group, channel)
            except Exception:
                logger.warning("could not leave group %r; the membership expires by itself", self.group)

    async def enter(self, layer: object, first_attempt: asyncio.Future) -> str:
        """A channel of this process in the group, trying again every RETRY_SECONDS until it is."""
        while True:
            try:
                channel = await layer.new_channel()
                await layer.group_add(self.group, channel)
            except Exception as error:
                if not first_attempt.done():
                    logger.error("cannot join group %r (%s); trying again every %s s", self.group, error, RETRY_SECONDS)
                    first_attempt.set_result(None)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if first_attempt.done():
                logger.warning("joined group %r: its clients hear broadcasts again", self.group)
            else:
                first_attempt.set_result(None)
            return channel

    async def keep_joined(self, layer: object, channel: str, *, first_wait: float = REJOIN_SECONDS) -> None:
        await asyncio.sleep(first_wait)
        while True:
            try:
                await layer.group_add(self.group, channel)
            except Exception:
                logger.exception("could not rejoin group %r", self.group)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            await asyncio.sleep(REJOIN_SECONDS)

    async def deliver(self, text: str) -> None:
        for number, client in enumerate(list(self.clients), start=1):
            try:
                await client.relay(text)
            except Exception:
                logger.exception("relay to one client failed")
            if number % CLIENTS_PER_TURN == 0:
                await asyncio.sleep(0)
