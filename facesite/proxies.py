"""The client address behind reverse proxies, one rule for the transport and every limit."""


def trusted_forwarded_address(forwarded_for: str, *, proxies: int) -> str:
    """Of an X-Forwarded-For list, the address the farthest of our `proxies` trusted proxies saw.

    Each proxy appends the address it received the request from: the last `proxies` entries are
    theirs, anything before them is what the client wrote itself, and is ignored."""
    addresses = [address.strip() for address in forwarded_for.split(",")]
    return addresses[-min(max(proxies, 1), len(addresses))]
