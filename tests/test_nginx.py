"""deploy/nginx.conf run by a real nginx (Debian's) in front of the live server: it passes uploads and
websockets, and what it answers by itself (413, 502, 504) is JSON like the API's errors."""

import asyncio
import json
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from websockets.asyncio.client import connect

from tests.live_server import HOST, Server, embedded_configuration, free_port, required_service, running_server

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
STARTUP_SECONDS = 10
MiB = 1024 * 1024


@dataclass(frozen=True)
class Proxy:
    port: int
    base_url: str
    log_path: Path


def local_config(
    folder: Path, *, port: int, upstream: str, read_timeout: str = "120s", resolver: str = "127.0.0.11"
) -> Path:
    """deploy/nginx.conf for nginx on this machine: on `port`, in front of `upstream` instead of
    compose's "web", asking `resolver` instead of Docker's DNS, with its files in `folder`."""
    temp_paths = "".join(
        f"    {kind}_temp_path {folder / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    replacements = {
        "user nginx;\n": "",  # whoever runs the tests (as root, nginx's workers run as nobody)
        "listen 8282;": f"listen {HOST}:{port};",
        "http://web:8282": f"http://{upstream}",
        "http {\n": "http {\n" + temp_paths,
        "proxy_read_timeout 120s;": f"proxy_read_timeout {read_timeout};",
        "resolver 127.0.0.11 valid=10s": f"resolver {resolver} valid=1s",
    }
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    for old, new in replacements.items():
        assert old in text, f"deploy/nginx.conf no longer has {old!r}"
        text = text.replace(old, new)
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


def nginx_command(folder: Path, config: Path, *arguments: str) -> list[str]:
    pid_file = f"pid {folder / 'nginx.pid'};"
    return [NGINX, "-p", str(folder), "-c", str(config), "-e", "stderr", "-g", pid_file, *arguments]


@pytest.fixture(scope="module", autouse=True)
def nginx_installed() -> None:
    required_service("nginx (apt-get install nginx)", lambda: subprocess.run([NGINX, "-v"], check=True))


@contextmanager
def running_nginx(upstream: str, **options: str) -> Iterator[Proxy]:
    # Not pytest's tmp_path: nginx's workers (nobody, as root) must reach their temporary folders.
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        folder.chmod(0o755)
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (folder / kind).mkdir(mode=0o777)
            (folder / kind).chmod(0o777)
        port = free_port()
        config = local_config(folder, port=port, upstream=upstream, **options)
        log_path = folder / "nginx.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                nginx_command(folder, config, "-g", "daemon off;"), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not accepts(port):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "nginx did not start:\n" + log_path.read_text()
                time.sleep(0.05)
            yield Proxy(port=port, base_url=f"http://{HOST}:{port}", log_path=log_path)
        finally:
            process.terminate()
            process.wait(timeout=15)


def accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("behind_nginx")
    configuration = {"PROXY_HEADERS": "true", "NUM_PROXIES": "1"}  # as docker-compose.yml sets
    with embedded_configuration(root) as database, running_server(root, {**database, **configuration}) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(server: Server) -> Iterator[Proxy]:
    with running_nginx(f"{HOST}:{server.port}") as running:
        yield running


def request_head(method: str, *headers: str) -> str:
    return "\r\n".join([f"{method} /image HTTP/1.1", f"Host: {HOST}", "Connection: close", *headers, "", ""])


def raw_exchange(port: int, head: str, body_chunks: tuple[bytes, ...] = ()) -> tuple[int, dict[str, str], bytes]:
    """Send a request as given (its head, then body chunks until nginx answers) and read the answer."""
    with socket.create_connection((HOST, port), timeout=20) as sock:
        sock.sendall(head.encode("latin-1"))
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # nginx answered and closed: the answer is already here
        received = b""
        while data := sock.recv(65536):
            received += data
    head_bytes, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def assert_json_error(status: int, headers: dict[str, str], body: bytes, expected_status: int, code: str) -> None:
    assert status == expected_status
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == code
    assert json.loads(body)["error"]["message"]


def test_nginx_accepts_the_deploy_configuration():
    # As the nginx image runs it, but for its user (which exists only in the image) and pid file.
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        config = folder / "nginx.conf"
        config.write_text((ROOT / "deploy" / "nginx.conf").read_text().replace("user nginx;\n", ""))
        result = subprocess.run(nginx_command(folder, config, "-t"), capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stderr


def test_uploads_and_websockets_pass_through(proxy: Proxy, http: requests.Session, astronaut_jpeg: bytes):
    async def upload_and_listen() -> tuple[requests.Response, dict]:
        async with connect(f"ws://{HOST}:{proxy.port}/faces", proxy=None) as client:
            response = await asyncio.to_thread(
                http.post, proxy.base_url + "/image", files={"image": ("a.jpg", astronaut_jpeg)}, timeout=60
            )
            return response, json.loads(await asyncio.wait_for(client.recv(), timeout=10))

    response, message = asyncio.run(upload_and_listen())

    assert response.status_code == 201, response.text
    assert message["type"] == "detection.created"
    assert message["id"] == response.json()["id"]


def test_the_apps_own_errors_pass_through_untouched(proxy: Proxy, http: requests.Session):
    response = http.delete(proxy.base_url + "/image", timeout=10)

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_declared_body_over_the_limit_gets_a_json_413_before_it_is_sent(proxy: Proxy):
    head = request_head("POST", "Content-Type: image/jpeg", f"Content-Length: {30 * MiB}")

    assert_json_error(*raw_exchange(proxy.port, head), 413, "image_too_large")


def test_a_streamed_body_over_the_limit_gets_a_json_413(proxy: Proxy):
    head = request_head("POST", "Content-Type: image/jpeg", "Transfer-Encoding: chunked")
    chunk = b"%x\r\n" % MiB + b"\xff" * MiB + b"\r\n"
    chunks = (chunk,) * 24 + (b"0\r\n\r\n",)

    assert_json_error(*raw_exchange(proxy.port, head, chunks), 413, "image_too_large")


def test_no_server_behind_it_gets_a_json_502():
    with running_nginx(f"{HOST}:{free_port()}") as nobody_listening:  # nothing listens on that port
        status, headers, body = raw_exchange(nobody_listening.port, request_head("GET"))

    assert_json_error(status, headers, body, 502, "server_unreachable")
    assert int(headers["retry-after"]) > 0


def test_a_server_that_never_answers_gets_a_json_504():
    with socket.create_server((HOST, 0)) as silent:  # accepts connections, never answers
        silent_port = silent.getsockname()[1]
        with running_nginx(f"{HOST}:{silent_port}", read_timeout="1s") as proxy:
            status, headers, body = raw_exchange(proxy.port, request_head("GET"))

    assert_json_error(status, headers, body, 504, "server_timeout")
    assert int(headers["retry-after"]) > 0


class ChangingDns:
    """A DNS server on 127.0.0.1 answering every A question with `address`, which a test changes as
    Docker's DNS does when a replica restarts with a new address."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while not self.stopped.is_set():
            try:
                query, client = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            self.sock.sendto(self.answer(query), client)

    def answer(self, query: bytes) -> bytes:
        question_end = query.index(b"\0", 12) + 5  # the name, then its type and class
        question_type = struct.unpack(">H", query[question_end - 4 : question_end - 2])[0]
        answers = b""
        if question_type == 1:  # A: a pointer to the question's name, type A, class IN, TTL 1 s, 4 bytes
            answers = struct.pack(">HHHLH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(self.address)
        header = query[:2] + struct.pack(">HHHHH", 0x8180, 1, 1 if answers else 0, 0, 0)
        return header + query[12:question_end] + answers

    def __enter__(self) -> "ChangingDns":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.sock.close()


@contextmanager
def replica_at(address: str, port: int) -> Iterator[None]:
    """An HTTP server on address:port that answers every GET with its own address."""

    class SayWhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = address.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((address, port), SayWhere)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_it_reaches_a_replica_at_the_new_address_dns_gives_without_a_restart(http: requests.Session):
    port = free_port()
    with (
        ChangingDns("127.0.0.1") as dns,
        replica_at("127.0.0.1", port),
        replica_at("127.0.0.2", port),
        running_nginx(f"web.test:{port}", resolver=f"{HOST}:{dns.port}") as proxy,
    ):
        before = http.get(proxy.base_url + "/", timeout=10).text
        dns.address = "127.0.0.2"  # the replica restarted elsewhere; nginx keeps running
        deadline = time.monotonic() + 15
        while (after := http.get(proxy.base_url + "/", timeout=10).text) != "127.0.0.2":
            assert time.monotonic() < deadline, "nginx kept the address it resolved first"
            time.sleep(0.2)

    assert (before, after) == ("127.0.0.1", "127.0.0.2")
