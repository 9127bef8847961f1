"""The wire between the proposer's server and the workers: length-prefixed messages over TCP on
127.0.0.1, every read and write ending by a deadline, and a challenge-response on the run's key
(HMAC-SHA256, both ways) before anything is unpickled."""

from __future__ import annotations

import socket
import time

HELLO = b"pytest-exp proposer 1\n"  # the controller's greeting, then its challenge
WELCOME = b"welcome\n"  # then the controller's proof of the key
REFUSED = b"refused\n"
NONCE = 32
KEY_LIMIT = 256  # bytes a message may have before the key is proven
LIMIT = 1 << 30  # after: a request carries its study's space, and a space may be large
WORKER, PROPOSER = b"worker", b"proposer"  # who proves: a reply cannot be echoed back as proof


def proof(key: bytes, who: bytes, nonce: bytes) -> bytes:
    import hmac  # here: only xdist runs talk to the proposer

    return hmac.digest(key, who + nonce, "sha256")


def same(a: bytes, b: bytes) -> bool:
    """Compared in constant time: how long a comparison takes tells nothing of the key."""
    import hmac

    return hmac.compare_digest(a, b)


class TooLong(ValueError):
    """A message longer than the peer may send at this point: garbage, or not our protocol."""


class Channel:
    """Length-prefixed messages over a TCP socket; every read and write ends by a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: bytes, deadline: float) -> None:
        self.sock.settimeout(left(deadline))
        self.sock.sendall(len(data).to_bytes(4, "big") + data)  # the timeout bounds it whole

    def recv(self, limit: int, deadline: float) -> bytes:
        size = int.from_bytes(self._read(4, deadline), "big")
        if size > limit:
            raise TooLong(f"a message of {size} bytes, over the {limit} allowed")
        return self._read(size, deadline)

    def wait(self) -> bool:
        """Until the peer sends (True) or closes (False): a worker's connection idles between
        trials, and the server's close shuts it down."""
        try:
            self.sock.settimeout(None)
            return bool(self.sock.recv(1, socket.MSG_PEEK))
        except OSError:
            return False

    def _read(self, size: int, deadline: float) -> bytes:
        data = bytearray()
        while len(data) < size:
            self.sock.settimeout(left(deadline))
            chunk = self.sock.recv(min(size - len(data), 1 << 20))
            if not chunk:
                raise EOFError("the connection closed")
            data += chunk
        return bytes(data)


def left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the deadline passed")
    return left
