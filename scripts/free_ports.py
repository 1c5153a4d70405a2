"""Print the first base port of N consecutive free loopback ports."""

from __future__ import annotations

import socket
import sys


def block_is_free(base: int, count: int) -> bool:
    for port in range(base, base + count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    for base in range(55000, 60000, 10):
        if block_is_free(base, count):
            print(base)
            return 0
    print("no free port block in 55000-60000", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
