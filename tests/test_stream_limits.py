"""/stream through the real server (Daphne and our transport): a frame over the byte limit closes the
socket with 1009 before its payload is read, a client over its budget of messages or bytes with 1008;
neither costs anyone else their stream."""

import asyncio
import json
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from facesite.transport import STREAM_MAX_TEXT_BYTES
from tests.live_server import Server, embedded_configuration, running_server

LIMITS = {"STREAM_MAX_FRAME_BYTES": "200000", "STREAM_BUDGET_FRAMES": "40", "STREAM_BUDGET_BYTES": "1000000"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("stream-limits")
    with embedded_configuration(root) as configuration, running_server(root, {**configuration, **LIMITS}) as server:
        yield server


def stream_url(server: Server) -> str:
    return server.ws_url.removesuffix("/faces") + "/stream"


async def close_code(server: Server, messages: list[bytes | str | list[bytes]]) -> int:
    """The code the server closes with while `messages` are sent (answers read and dropped); a list
    is one message sent in fragments."""
    async with connect(stream_url(server), proxy=None, max_size=None) as socket:
        await socket.recv()  # stream.ready
        try:
            for message in messages:
                await socket.send(message)
            async with asyncio.timeout(10):
                while True:
                    await socket.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else -1
    return 0


async def works(server: Server, frame: bytes) -> bool:
    async with connect(stream_url(server), proxy=None) as socket:
        await socket.recv()
        await socket.send(frame)
        return json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "frame.faces"


@pytest.mark.parametrize(
    "too_big",
    [
        pytest.param(b"\xff" * 200_001, id="frame"),
        pytest.param(" " * (STREAM_MAX_TEXT_BYTES + 1), id="text"),
    ],
)
async def test_a_message_over_its_byte_limit_closes_with_1009(server, astronaut_jpeg, too_big):
    assert await close_code(server, [astronaut_jpeg, too_big]) == 1009
    assert await works(server, astronaut_jpeg)


async def test_a_frame_sent_in_fragments_counts_them_all(server, astronaut_jpeg):
    assert await close_code(server, [[b"\xff" * 100_000, b"\xff" * 100_001]]) == 1009


@pytest.mark.parametrize(
    "flood",
    [
        pytest.param([b"x"] * 41, id="messages"),
        pytest.param([b"\xff" * 190_000] * 6, id="bytes"),
        pytest.param(['{"type": "options"}'] * 41, id="texts"),
    ],
)
async def test_a_client_over_its_budget_closes_with_1008(server, astronaut_jpeg, flood):
    assert await close_code(server, flood) == 1008
    assert await works(server, astronaut_jpeg)
    assert "Traceback" not in server.output()
