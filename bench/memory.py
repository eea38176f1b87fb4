"""Memory of a process tree (the daemon, its forkserver and parser workers), sampled from /proc.

Two sums are kept, because they answer different questions:

* RSS summed over the processes counts every shared page once per process
  that maps it (libpython, and the modules a forkserver loaded before forking
  its workers): an upper bound, and the figure the benchmarks have always
  quoted.
* PSS (proportional set size, /proc/PID/smaps_rollup) divides each shared
  page between the processes sharing it, so the sum is what the tree really
  occupies: what the kernel would have to give back if it ended, and close to
  what systemd's MemoryCurrent shows for the service (which also counts page
  cache).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable


def descendants(pid: int, exclude: Iterable[int] = ()) -> set[int]:
    """PID and every process below it, except the subtrees rooted at `exclude`."""
    excluded = set(exclude)
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in tree and child not in excluded:
                tree.add(child)
                frontier.append(child)
    return tree


def _field_kb(path: str, name: str) -> int:
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(name):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rss_mb(pids: Iterable[int]) -> float:
    return sum(_field_kb(f"/proc/{pid}/status", "VmRSS:") for pid in pids) / 1024


def pss_mb(pids: Iterable[int]) -> float:
    return sum(_field_kb(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in pids) / 1024


class TreeMemory:
    """Samples a process tree's summed RSS and PSS every `every` seconds; keeps the peaks."""

    def __init__(self, pid: int | None = None, *, exclude: Iterable[int] = (),
                 every: float = 0.05) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.exclude = set(exclude)
        self.every = every
        self.peak_mb = 0.0  # summed RSS
        self.peak_pss_mb = 0.0
        self.processes = 0  # in the tree at the RSS peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> tuple[float, float]:
        tree = descendants(self.pid, self.exclude)
        rss, pss = rss_mb(tree), pss_mb(tree)
        if rss > self.peak_mb:
            self.peak_mb, self.processes = rss, len(tree)
        self.peak_pss_mb = max(self.peak_pss_mb, pss)
        return rss, pss

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
