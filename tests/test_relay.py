"""The process's relay (detection.relay): one member of the group hands each broadcast to every client."""

import asyncio
import math
import uuid
from collections.abc import Callable

import redis.asyncio
import redis.exceptions
from channels.layers import get_channel_layer

from detection.broadcast import faces_message
from detection.relay import CLIENTS_PER_TURN, GroupRelay
from facesite.layers import channel_layers


class Listener:
    """A client that keeps what it is sent, and what `clock` read when it was."""

    def __init__(self, clock: list[int] | None = None) -> None:
        self.texts: list[str] = []
        self.clock = clock
        self.times: list[int] = []

    async def relay(self, text: str) -> None:
        self.texts.append(text)
        if self.clock is not None:
            self.times.append(self.clock[0])


class Broken:
    """A client whose socket is gone."""

    async def relay(self, text: str) -> None:
        raise ConnectionResetError("the client went away")


async def eventually(condition: Callable[[], object], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"waited 10 s for {what}"
        await asyncio.sleep(0.01)


async def joined(relay: GroupRelay) -> None:
    await asyncio.wait_for(relay.join(), 10)  # a relay that never joins fails the test, not the run


def relaying_to(relay: GroupRelay, clients: list) -> None:
    for client in clients:
        relay.add(client)


def leaving(relay: GroupRelay, clients: list) -> None:
    for client in clients:
        relay.discard(client)


async def test_a_broadcast_reaches_every_client_of_the_process():
    group = f"test-{uuid.uuid4().hex}"
    relay = GroupRelay(group)
    listeners = [Listener() for _ in range(3)]
    await joined(relay)
    relaying_to(relay, listeners)

    await get_channel_layer().group_send(group, faces_message({"n": 1}))

    await eventually(lambda: all(listener.texts for listener in listeners), "every client to hear it")
    assert [listener.texts for listener in listeners] == [['{"n": 1}']] * 3
    leaving(relay, listeners)


async def test_clients_whose_sockets_fail_do_not_stop_the_others(caplog):
    group = f"test-{uuid.uuid4().hex}"
    relay = GroupRelay(group)
    listeners = [Listener() for _ in range(10)]
    await joined(relay)
    # Many of both kinds: in whatever order the relay takes them, broken ones come before some listeners.
    clients = [*listeners, *(Broken() for _ in range(10))]
    relaying_to(relay, clients)

    for number in range(2):
        await get_channel_layer().group_send(group, faces_message({"n": number}))

    await eventually(lambda: all(len(listener.texts) == 2 for listener in listeners), "every listener to hear both")
    assert relay.task is not None and not relay.task.done()  # still relaying
    assert "relay to one client failed" in caplog.text  # each failure is logged, with its traceback
    leaving(relay, clients)


async def test_a_large_broadcast_lets_the_process_serve_others_between_batches():
    relay = GroupRelay(f"test-{uuid.uuid4().hex}")
    clock = [0]
    count = 3 * CLIENTS_PER_TURN + 1
    listeners = [Listener(clock) for _ in range(count)]
    relaying_to(relay, listeners)

    async def tick() -> None:
        while True:
            clock[0] += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)  # the ticker's first turn
    await asyncio.wait_for(relay.deliver("hello"), 10)
    ticker.cancel()

    turns = {listener.times[0] for listener in listeners}
    # The loop ran between batches (other requests are served), but not between every client
    # (a broadcast to thousands would crawl).
    assert 1 < len(turns) <= math.ceil(count / CLIENTS_PER_TURN)
    assert all(listener.texts == ["hello"] for listener in listeners)


async def test_a_relay_whose_layer_was_unreachable_joins_once_it_is_back(redis_server):
    redis_server.stop()  # nothing listens on its port
    group = f"test-{uuid.uuid4().hex}"
    relay = GroupRelay(group)
    listener = Listener()

    await joined(relay)  # returns all the same: the websocket that asked is accepted...
    relay.add(listener)
    redis_server.start()  # ...and the relay keeps trying until the layer is back

    deadline = asyncio.get_running_loop().time() + 10
    while not listener.texts:  # a message sent before the relay is back in the group reaches no one
        assert asyncio.get_running_loop().time() < deadline, "the relay did not rejoin within 10 s"
        await get_channel_layer().group_send(group, faces_message({"n": 1}))
        await asyncio.sleep(0.2)
    assert listener.texts[0] == '{"n": 1}'
    relay.discard(listener)


async def test_the_last_client_leaving_takes_the_process_out_of_the_group(redis_url, settings):
    prefix = f"test-{uuid.uuid4().hex}"
    settings.CHANNEL_LAYERS = channel_layers(redis_url, prefix=prefix)
    relay = GroupRelay("faces")
    first, second = Listener(), Listener()
    connection = redis.asyncio.Redis.from_url(redis_url)
    group_key = f"{prefix}:group:faces"

    await joined(relay)
    relay.add(first)
    await joined(relay)  # a second client: the same membership
    relay.add(second)
    assert await connection.zcard(group_key) == 1

    relay.discard(first)
    await asyncio.sleep(0.2)
    assert await connection.zcard(group_key) == 1  # one client left: still in
    relay.discard(second)
    async with asyncio.timeout(10):
        while await connection.exists(group_key):
            await asyncio.sleep(0.05)
    await connection.aclose()


async def test_a_client_added_just_after_the_last_one_left_still_hears_broadcasts():
    group = f"test-{uuid.uuid4().hex}"
    relay = GroupRelay(group)
    last, newcomer = Listener(), Listener()
    await joined(relay)
    relaying_to(relay, [last])
    await joined(relay)  # the newcomer's handshake: the relay is in the group...
    leaving(relay, [last])  # ...then the last client leaves before the newcomer is added: the relay stops
    relaying_to(relay, [newcomer])

    await eventually(lambda: relay.first_attempt is not None and relay.first_attempt.done(), "the relay to rejoin")
    await get_channel_layer().group_send(group, faces_message({"n": 1}))

    await eventually(lambda: newcomer.texts, "the newcomer to hear the broadcast")
    assert newcomer.texts == ['{"n": 1}']
    leaving(relay, [newcomer])
