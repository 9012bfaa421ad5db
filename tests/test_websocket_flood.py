"""A /faces client that sends frames as fast as it can costs next to nothing and is disconnected (1008),
whatever it sends (text, binary, pings, pongs, fragments, one large frame), while the server's memory
and /healthz stay steady and other clients keep hearing uploads."""

import asyncio
import json
import struct
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from websockets.asyncio.client import connect

from tests.live_server import Server, embedded_configuration, memory_kib, raw_websocket, running_server

MIB = 1024 * 1024


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """One client frame (RFC 6455), masked with a zero key so the payload goes as it is."""
    length = len(payload)
    if length < 126:
        size = bytes([0x80 | length])
    elif length <= 0xFFFF:
        size = bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        size = bytes([0x80 | 127]) + struct.pack("!Q", length)
    return bytes([(0x80 if fin else 0) | opcode]) + size + bytes(4) + payload


FLOODS = {
    "tiny text frames": frame(0x1, b"x") * 20_000,
    "tiny binary frames": frame(0x2, b"\x00") * 20_000,
    "pings": frame(0x9, b"p") * 20_000,
    "pongs": frame(0xA, b"p") * 20_000,
    "fragments of one message": frame(0x1, b"x", fin=False) + frame(0x0, b"x", fin=False) * 20_000,
    "one large frame": frame(0x2, b"\x00" * 512 * 1024),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, coffee_png) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("flood")
    with embedded_configuration(root) as configuration, running_server(root, configuration) as server:
        # One upload first: the detector loads with it, and the memory measured later is the flood's.
        session = requests.Session()
        session.trust_env = False
        assert session.post(server.base_url + "/image", files={"image": coffee_png}).status_code == 201
        yield server


def flood_until_closed(server: Server, data: bytes, seconds: float) -> tuple[int | None, int]:
    """Sends `data` over and over for up to `seconds`; the close code the server sent (None if it did
    not close) and how many bytes went out."""
    sock = raw_websocket(server.port)
    sock.setblocking(False)
    received, sent = b"", 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                sent += sock.send(data)
            except BlockingIOError:
                time.sleep(0.001)
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            except BlockingIOError:
                pass
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return close_code(received), sent


def close_code(received: bytes) -> int | None:
    """The code of the close frame among the server's frames (unmasked, RFC 6455), if it sent one."""
    while len(received) >= 2:
        opcode, length = received[0] & 0x0F, received[1] & 0x7F
        start = 2 + {126: 2, 127: 8}.get(length, 0)
        if length >= 126:
            length = int.from_bytes(received[2:start], "big")
        if opcode == 0x8:
            return struct.unpack("!H", received[start : start + 2])[0]
        received = received[start + length :]
    return None


@pytest.mark.parametrize("flood", FLOODS.values(), ids=FLOODS.keys())
def test_a_flooding_client_is_disconnected_and_costs_nothing(server, flood, coffee_png):
    http = requests.Session()
    http.trust_env = False
    health_seconds: list[float] = []
    flooding = threading.Event()

    def watch_health() -> None:
        while flooding.is_set():
            started = time.monotonic()
            assert http.get(server.base_url + "/healthz", timeout=10).status_code == 200
            health_seconds.append(time.monotonic() - started)
            time.sleep(0.05)

    async def scenario() -> tuple[int | None, int, int, dict]:
        async with connect(server.ws_url, proxy=None) as listener:
            flooding.set()
            watcher = threading.Thread(target=watch_health)
            watcher.start()
            try:
                code, sent = await asyncio.to_thread(flood_until_closed, server, flood, 5)
            finally:
                flooding.clear()
                watcher.join(timeout=15)
            peak_after_flood = memory_kib(server.process.pid, "VmHWM")
            upload = await asyncio.to_thread(http.post, server.base_url + "/image", files={"image": coffee_png})
            message = json.loads(await asyncio.wait_for(listener.recv(), 10))
            return code, sent, peak_after_flood, {"upload": upload.json()["id"], "heard": message["id"]}

    peak_before = memory_kib(server.process.pid, "VmHWM")
    code, sent, peak_after_flood, ids = asyncio.run(scenario())
    peak_growth = (peak_after_flood - peak_before) * 1024

    assert code == 1008, f"not disconnected with 1008 after {sent / MIB:.1f} MiB sent"
    assert ids["heard"] == ids["upload"]  # the other client still hears uploads
    assert health_seconds and max(health_seconds) < 2, health_seconds
    assert peak_growth < 20 * MIB, f"peak RSS grew by {peak_growth / MIB:.0f} MiB"


def test_a_client_within_its_budget_stays_connected(server):
    sock = raw_websocket(server.port)
    sock.sendall(frame(0x1, b"hello") + frame(0xA, b"") + frame(0x9, b"ping"))
    sock.settimeout(3)
    pong = sock.recv(64)

    assert pong[:1] == b"\x8a"  # the pong to our ping: connected, nothing closed
    sock.settimeout(1)
    with pytest.raises(TimeoutError):
        sock.recv(64)  # and no close frame follows
    sock.close()
