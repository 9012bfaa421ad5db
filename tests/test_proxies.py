"""The client address behind proxies: the address the farthest trusted proxy saw, whatever the client wrote."""

import pytest

from facesite.proxies import trusted_forwarded_address


@pytest.mark.parametrize(
    "forwarded_for, proxies, address",
    [
        ("203.0.113.9", 1, "203.0.113.9"),
        ("198.51.100.7,203.0.113.9", 1, "203.0.113.9"),  # nginx writes ", "; others write ","
        ("spoofed, 198.51.100.7, 203.0.113.9", 2, "198.51.100.7"),
        ("spoofed,198.51.100.7,203.0.113.9", 2, "198.51.100.7"),
        ("198.51.100.7, 203.0.113.9", 0, "203.0.113.9"),  # behind a proxy at all: at least the nearest one
        ("203.0.113.9", 3, "203.0.113.9"),  # fewer entries than proxies: the first
    ],
)
def test_it_takes_the_address_the_farthest_trusted_proxy_saw(forwarded_for, proxies, address):
    assert trusted_forwarded_address(forwarded_for, proxies=proxies) == address
