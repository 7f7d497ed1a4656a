"""Pairing 1-rank and 2-rank times of the same frame (``--interleave`` of
``benchmarks/mpi_stages.py`` and ``benchmarks/insitu.py``): rank 0 works alone while rank 1
sleeps, then both share the frame. numpy only, so the launching process of ``insitu.py``
does not start MPI by importing it."""

from __future__ import annotations

import time

import numpy as np


def idle_until_told(comm) -> None:
    """Rank 1 while rank 0 works alone: sleep (not MPI's busy wait) until
    :func:`tell_idle` on rank 0 says it is done."""
    while not comm.Iprobe(source=0, tag=7):
        time.sleep(0.001)
    comm.recv(source=0, tag=7)


def tell_idle(comm) -> None:
    """Rank 0: end rank 1's :func:`idle_until_told`."""
    comm.send(None, dest=1, tag=7)


def ratios(one: list[float], two: list[float]) -> str:
    """The strong-scaling figures of paired 1-rank and 2-rank seconds per frame."""
    one_a, two_a = np.asarray(one), np.asarray(two)
    ratio = two_a / one_a
    return (f"median 1 rank {np.median(one_a):.3f} s, 2 ranks {np.median(two_a):.3f} s; "
            f"ratio of medians {np.median(two_a) / np.median(one_a):.3f}, median of "
            f"per-frame ratios {np.median(ratio):.3f} (quartiles "
            f"{np.quantile(ratio, 0.25):.3f}-{np.quantile(ratio, 0.75):.3f})")
