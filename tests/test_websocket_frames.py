"""A broadcast is framed once per process (facesite.transport.text_frame) and written as is to each
client: the bytes must be the ones autobahn writes for Daphne's own sendMessage, at every length."""

import pytest
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from facesite.transport import BoundedWebSocketProtocol, text_frame


class TCPTransport(StringTransport):
    """In memory, with what BoundedWebSocketProtocol.sendData uses of Twisted's TCP transport."""

    TLS = False

    def writeSomeData(self, data: bytes) -> int:
        self.write(data)
        return len(data)


def open_protocol() -> BoundedWebSocketProtocol:
    """One of our protocols as Daphne's factory makes it (Daphne's options), open, on a transport in memory."""
    server = Server(application=None, endpoints=["tcp:port=0"])  # not listening: run() is never called
    factory = WebSocketFactory(server, server=True)
    factory.protocol = BoundedWebSocketProtocol
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    protocol.makeConnection(TCPTransport())
    protocol.state = protocol.STATE_OPEN  # as after the handshake, which also sets:
    protocol.client_addr = ["127.0.0.1", 50000]
    return protocol


# One-byte, two-byte and eight-byte payload lengths, at their edges; and text outside ASCII.
@pytest.mark.parametrize("length", [0, 125, 126, 65_535, 65_536, 70_000])
@pytest.mark.parametrize("character", ["x", "é"])
def test_a_shared_text_is_framed_as_daphne_frames_a_message(length, character):
    text = character * length
    daphne = open_protocol()
    daphne.serverSend(text)
    ours = open_protocol()
    ours.send_shared_text(text)

    assert ours.transport.value() == daphne.transport.value() == text_frame(text)


def test_a_shared_text_to_a_client_that_left_is_dropped():
    protocol = open_protocol()
    protocol.state = protocol.STATE_CLOSED

    protocol.send_shared_text("hello")

    assert protocol.transport.value() == b""
