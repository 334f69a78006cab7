"""Cutting a stream into micro-batches, for the batched-equals-per-point properties."""

from __future__ import annotations


def cut(items: list[float], sizes: list[int]) -> list[list[float]]:
    """``items`` in consecutive chunks of the given sizes, cycled."""
    out, start, i = [], 0, 0
    while start < len(items):
        out.append(items[start : start + sizes[i % len(sizes)]])
        start += sizes[i % len(sizes)]
        i += 1
    return out
