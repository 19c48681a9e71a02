"""Benchmark the call history (firmware/history.py) on a full list.

    .venv/bin/python -m tools.bench.history_bench [--entries 1000] [--repeat 300] [--dir DIR]

Fills a new database with `--entries` calls (missed, received and dialled in turn, 20-character
names, one minute apart), timing each add(); then times `--repeat` runs each of add() on the
full list (every one also trims the oldest entry), list(100), list("missed", 100),
unseen_missed(), get() and opening the full database (WAL replay, quick_check, migration and
trim). Prints median and mean µs per call, and the database size on disk: the file and its WAL
log while open, the file alone after close. The database lives in a temporary directory under
`--dir` (default: the system's temporary directory, often a RAM disk: pass a directory on the
phone's flash to include its write cost). Figures only: no thresholds, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from firmware.history import KINDS, HistoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def timed(action: Callable[[], object]) -> float:
    """Microseconds one call of `action` took."""
    start = time.perf_counter_ns()
    action()
    return (time.perf_counter_ns() - start) / 1000


def report(label: str, samples: list[float]) -> None:
    print(f"{label:<34} median {statistics.median(samples):8.1f} µs   "
          f"mean {statistics.fmean(samples):8.1f} µs   ({len(samples)} runs)")


def add_one(store: HistoryStore, i: int) -> None:
    store.add(KINDS[i % 3], f"+4681{i:06d}", f"Caller number {i:06d}", i % 2,
              T0 + timedelta(minutes=i), 12.5)


def size_kib(path: Path, suffix: str = "") -> float:
    files = [Path(f"{path}{suffix}")]
    return sum(f.stat().st_size for f in files if f.exists()) / 1024


def run(folder: Path, entries: int, repeat: int) -> None:
    path = folder / "history.db"
    store = HistoryStore(path, max_entries=entries, now=lambda: T0)
    report(f"add() while filling to {entries}", [timed(lambda i=i: add_one(store, i))
                                                for i in range(entries)])
    report("add() on the full list (+ trim)", [timed(lambda i=i: add_one(store, entries + i))
                                                for i in range(repeat)])
    report("list(limit=100)", [timed(lambda: store.list(limit=100)) for _ in range(repeat)])
    report('list("missed", limit=100)', [timed(lambda: store.list("missed", limit=100))
                                         for _ in range(repeat)])
    report("unseen_missed()", [timed(store.unseen_missed) for _ in range(repeat)])
    newest = store.list(limit=1)[0].id
    report("get(id)", [timed(lambda: store.get(newest)) for _ in range(repeat)])
    print(f"unseen missed calls in the list: {store.unseen_missed()}")
    print(f"database while open: {size_kib(path):.0f} KiB file + "
          f"{size_kib(path, '-wal'):.0f} KiB WAL log + {size_kib(path, '-shm'):.0f} KiB index")
    store.close()
    print(f"database after close: {size_kib(path):.0f} KiB "
          f"({size_kib(path) * 1024 / entries:.0f} bytes per entry)")
    report("open the full database", [timed(lambda: HistoryStore(
        path, max_entries=entries, now=lambda: T0).close()) for _ in range(max(1, repeat // 10))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000, help="entries in the full list")
    parser.add_argument("--repeat", type=int, default=300, help="runs per measured operation")
    parser.add_argument("--dir", type=Path, default=None, help="where the database goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="history-bench-", dir=args.dir) as folder:
        print(f"database in {folder}")
        run(Path(folder), args.entries, args.repeat)


if __name__ == "__main__":
    main()
