"""The yardstick of `make bench-load`: a websocket broadcaster with no framework and no detection.

Each POST to the upload port (any path; the body is read and dropped) is answered 201 with
{"id": N} right after `websockets.broadcast` hands every client of the websocket port a message of
--message-bytes bytes that carries the same id, as /faces does. websockets' own server speaks only
GET, so the POST side is a few lines on asyncio's streams. bench_load runs it as a subprocess:

    python -m detection.bare_broadcaster --ws-port 8001 --upload-port 8002 --message-bytes 900

It prints "ready" once both ports listen. No Django here: the point is what a broadcast costs bare.
"""

import argparse
import asyncio
import itertools
import json
import sys

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve

HOST = "127.0.0.1"


def padded_message(upload_id: int, size: int) -> str:
    """A detection-like message with `upload_id`, padded to `size` bytes (at least its bare length)."""
    message = {"type": "detection.created", "id": upload_id, "padding": ""}
    message["padding"] = "x" * (size - len(json.dumps(message)))  # none if negative
    return json.dumps(message)


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def hold(connection: ServerConnection) -> None:
    """Keep the client until it leaves; it only listens."""
    await connection.wait_closed()


class Uploads:
    def __init__(self, websockets: Server, message_bytes: int) -> None:
        self.websockets = websockets
        self.message_bytes = message_bytes
        self.ids = itertools.count(1)

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the requests of one keep-alive HTTP connection, one after another."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(content_length(head))
                upload_id = next(self.ids)
                broadcast(self.websockets.connections, padded_message(upload_id, self.message_bytes))
                body = json.dumps({"id": upload_id}).encode()
                writer.write(
                    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client closed the connection, or sent something that is not HTTP
        finally:
            writer.close()


async def run(ws_port: int, upload_port: int, message_bytes: int) -> None:
    # No compression and no pings: the server under test negotiates neither.
    async with serve(hold, HOST, ws_port, compression=None, ping_interval=None, max_queue=None) as websockets:
        uploads = await asyncio.start_server(Uploads(websockets, message_bytes).answer, HOST, upload_port)
        async with uploads:
            print("ready", flush=True)
            await uploads.serve_forever()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ws-port", type=int, required=True)
    parser.add_argument("--upload-port", type=int, required=True)
    parser.add_argument("--message-bytes", type=int, required=True)
    options = parser.parse_args(argv)
    asyncio.run(run(options.ws_port, options.upload_port, options.message_bytes))


if __name__ == "__main__":
    main(sys.argv[1:])
