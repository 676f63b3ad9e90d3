"""Payloads whose bytes show where they come from."""

from __future__ import annotations


def pattern(nbytes: int, seed: int = 0) -> bytes:
    """*nbytes* bytes of a recognisable pattern (different for each *seed*)."""
    block = bytes((i * 7 + seed * 13) % 251 for i in range(251))
    repeats, rest = divmod(nbytes, len(block))
    return block * repeats + block[:rest]
