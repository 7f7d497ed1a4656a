"""torch's intra-op thread count, set for the whole process (torch has no other scope):
the one knob for how many cores icemon uses (the network's threads, and as many SOAP
processes). Entry points that set it restore it when they are done."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def set_torch_threads(n: int) -> int:
    """Set torch's threads to ``n``; returns the previous count (to restore later)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    return before


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's threads set to ``n`` inside the block (None or 0: unchanged), restored after
    it whatever happens."""
    if not n:
        yield
        return
    before = set_torch_threads(n)
    try:
        yield
    finally:
        set_torch_threads(before)
