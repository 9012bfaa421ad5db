"""The names and addresses this machine answers to, for the default ALLOWED_HOSTS.

With them `make run` works from this machine and from the LAN without editing settings.
"""

import contextlib
import fcntl
import socket
import struct
from pathlib import Path

_SIOCGIFADDR = 0x8915  # Linux ioctl: the IPv4 address of a network interface


def _ipv4_addresses() -> set[str]:
    addresses = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
            except OSError:  # interface without an IPv4 address
                continue
            addresses.add(socket.inet_ntoa(reply[20:24]))
    return addresses


def _ipv6_addresses() -> set[str]:
    table = Path("/proc/net/if_inet6")
    if not table.exists():
        return set()
    addresses = set()
    for line in table.read_text().splitlines():
        raw = bytes.fromhex(line.split()[0])
        addresses.add(f"[{socket.inet_ntop(socket.AF_INET6, raw)}]")
    return addresses


def machine_hosts() -> list[str]:
    names = {"localhost", "127.0.0.1", "[::1]", socket.gethostname(), socket.getfqdn()}
    with contextlib.suppress(OSError):  # no interface listing (non-Linux): the names are enough
        names |= _ipv4_addresses() | _ipv6_addresses()
    return sorted(names)
