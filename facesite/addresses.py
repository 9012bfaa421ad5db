"""What each client address holds open in this process (connections, sockets), up to a cap."""

from collections import Counter


class HeldPerAddress:
    def __init__(self) -> None:
        self.held: Counter[str] = Counter()

    def take(self, address: str, *, cap: int) -> bool:
        """One more for `address`, unless it already holds `cap` (0: no cap). Check and count happen
        together, with no await between them, so things that arrive at once cannot all pass."""
        if cap and self.held[address] >= cap:
            return False
        self.held[address] += 1
        return True

    def give_back(self, address: str) -> None:
        self.held[address] -= 1
        if self.held[address] <= 0:
            del self.held[address]
