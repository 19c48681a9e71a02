"""Call history (firmware/history.py) on real SQLite files in tmp_path.

The power-cut test kills a child process with SIGKILL while it adds entries as fast as it can:
the child prints each id after `add()` returned (the transaction committed), and the parent
checks that the reopened file is intact and holds every printed id.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from firmware import history
from firmware.call import Call, CallState, EndReason
from firmware.history import NAME_MAX, NUMBER_MAX, HistoryEntry, HistoryStore, clean_text

ROOT = Path(__file__).resolve().parents[2]
STOCKHOLM = ZoneInfo("Europe/Stockholm")
T0 = datetime(2026, 11, 22, 13, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 14, 5, 3, tzinfo=STOCKHOLM)  # 13:05:03 UTC, names moved files
STAMP = "20261122T130503Z"


def now() -> datetime:
    return NOW


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(tmp_path / "history.db", now=now) as opened:
        yield opened


def add(store: HistoryStore, minute: int, kind: str = "missed", number: str = "1001",
        name: str = "Anna") -> HistoryEntry:
    return store.add(kind, number, name, 0, T0 + timedelta(minutes=minute), 0.0)


def ids(entries: list[HistoryEntry]) -> list[int]:
    return [entry.id for entry in entries]


def raw(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def aside(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".corrupt-" in p.name or ".newer-" in p.name)


# -- the list ---------------------------------------------------------------------------------


def test_add_returns_the_stored_entry_and_get_finds_it(store: HistoryStore) -> None:
    started = datetime(2026, 11, 22, 14, 0, 0, 250_000, tzinfo=STOCKHOLM)
    entry = store.add("received", "+4681234567", "Reception", 1, started, 42.5)
    assert entry == HistoryEntry(entry.id, "received", "+4681234567", "Reception", 1,
                                 started, 42.5, True)
    assert store.get(entry.id) == entry
    assert store.get(entry.id + 1) is None
    assert add(store, 0).seen is False  # only missed calls start unseen


def test_list_is_newest_first_and_filters_by_kind(store: HistoryStore) -> None:
    missed_a = add(store, 1, "missed")
    dialed = add(store, 3, "dialed")
    received = add(store, 2, "received")
    missed_b = add(store, 4, "missed")
    assert ids(store.list()) == [missed_b.id, dialed.id, received.id, missed_a.id]
    assert ids(store.list(kind="missed")) == [missed_b.id, missed_a.id]
    assert ids(store.list("dialed")) == [dialed.id]
    assert ids(store.list("received")) == [received.id]


def test_list_pages_with_limit_and_offset(store: HistoryStore) -> None:
    entries = [add(store, minute) for minute in range(10)]
    newest_first = ids(entries)[::-1]
    assert ids(store.list(limit=3)) == newest_first[:3]
    assert ids(store.list(limit=3, offset=3)) == newest_first[3:6]
    assert ids(store.list(limit=100, offset=8)) == newest_first[8:]
    assert store.list(limit=0) == []
    assert store.list(offset=50) == []


def test_same_start_time_lists_the_later_entry_first(store: HistoryStore) -> None:
    first, second = add(store, 5), add(store, 5)
    assert ids(store.list()) == [second.id, first.id]


def test_delete_removes_one_entry(store: HistoryStore) -> None:
    keep, gone = add(store, 1), add(store, 2)
    assert store.delete(gone.id) is True
    assert store.delete(gone.id) is False
    assert ids(store.list()) == [keep.id]


def test_ids_are_never_reused(store: HistoryStore) -> None:
    gone = add(store, 1)
    store.delete(gone.id)
    assert add(store, 2).id > gone.id


def test_clear_all_or_one_kind(store: HistoryStore) -> None:
    add(store, 1, "missed"), add(store, 2, "missed")
    dialed = add(store, 3, "dialed")
    assert store.clear("missed") == 2
    assert ids(store.list()) == [dialed.id]
    assert store.clear() == 1
    assert store.list() == []
    assert store.unseen_missed() == 0


def test_unseen_missed_counts_until_the_list_is_seen(store: HistoryStore) -> None:
    add(store, 1, "missed"), add(store, 2, "received"), add(store, 3, "dialed")
    add(store, 4, "missed")
    assert store.unseen_missed() == 2
    assert store.mark_seen() == 2
    assert store.unseen_missed() == 0
    assert all(entry.seen for entry in store.list())
    assert store.mark_seen() == 0
    add(store, 5, "missed")
    assert store.unseen_missed() == 1


def test_mark_seen_up_to_keeps_a_call_missed_while_the_list_was_open(
        store: HistoryStore) -> None:
    shown = add(store, 1)
    later = add(store, 2)
    assert store.mark_seen(up_to=shown.id) == 1
    assert store.unseen_missed() == 1
    assert store.get(later.id).seen is False


def test_bounded_size_keeps_the_newest(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "history.db", max_entries=1000, now=now) as store:
        added = [add(store, minute, "missed" if minute % 2 else "dialed")
                 for minute in range(1200)]
        kept = store.list(limit=5000)
        assert ids(kept) == ids(added[200:])[::-1]
        assert store.unseen_missed() == 500
    assert raw(tmp_path / "history.db", "SELECT count(*) FROM calls") == [(1000,)]


def test_bound_goes_by_start_time_then_id(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "history.db", max_entries=3, now=now) as store:
        late = add(store, 10)
        ties = [add(store, 5) for _ in range(3)]
        assert ids(store.list()) == [late.id, ties[2].id, ties[1].id]


def test_a_smaller_bound_trims_at_open(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with HistoryStore(path, now=now) as store:
        added = [add(store, minute) for minute in range(20)]
    with HistoryStore(path, max_entries=5, now=now) as store:
        assert ids(store.list()) == ids(added[15:])[::-1]


def test_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with HistoryStore(path, now=now) as store:
        add(store, 1, "missed"), add(store, 2, "dialed"), add(store, 3, "missed")
        store.mark_seen(up_to=1)
        before = store.list()
    with HistoryStore(path, now=now) as store:
        assert store.list() == before
        assert store.unseen_missed() == 1
        assert add(store, 4).id == 4


def test_close_twice_is_harmless(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.db", now=now)
    store.close()
    store.close()


def test_wal_mode_is_on(store: HistoryStore) -> None:
    add(store, 1)
    assert raw(store.path, "PRAGMA journal_mode") == [("wal",)]
    assert raw(store.path, "PRAGMA user_version") == [(len(history.MIGRATIONS),)]
    assert store._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL


# -- calls ------------------------------------------------------------------------------------


def ended_call(direction: str, connected: bool, **fields: object) -> Call:
    call = Call(id="c1", direction=direction, line=1, state=CallState.ENDED, started_at=100.0,
                number="1002", remote_name="Bo", **fields)
    call.connected_at = 105.0 if connected else None
    call.ended_at = 125.0
    call.end_reason = EndReason.NORMAL if connected else EndReason.MISSED
    return call


def test_add_call_takes_kind_and_duration_from_the_call(store: HistoryStore) -> None:
    missed = store.add_call(ended_call("incoming", False), T0, now=130.0)
    received = store.add_call(ended_call("incoming", True), T0, now=130.0)
    dialed = store.add_call(ended_call("outgoing", True), T0, now=130.0)
    assert (missed.kind, missed.duration_s, missed.seen) == ("missed", 0.0, False)
    assert (received.kind, received.duration_s, received.line) == ("received", 20.0, 1)
    assert (dialed.kind, dialed.number, dialed.name) == ("dialed", "1002", "Bo")


def test_feature_codes_and_empty_dialling_stay_out_of_the_list(store: HistoryStore) -> None:
    assert store.add_call(ended_call("outgoing", False, feature=True), T0, now=1.0) is None
    nothing_dialled = ended_call("outgoing", False)
    nothing_dialled.number = ""
    assert store.add_call(nothing_dialled, T0, now=1.0) is None
    assert store.list() == []


# -- names from the directory ----------------------------------------------------------------


def test_names_come_from_the_directory_else_from_the_call(store: HistoryStore) -> None:
    add(store, 1, number="1001", name="Anna (from SIP)")
    add(store, 2, number="1002", name="Bo (from SIP)")
    add(store, 3, number="1001", name="")
    asked: list[str] = []

    def directory(number: str) -> str | None:
        asked.append(number)
        return {"1001": "Anna Andersson"}.get(number)

    assert [e.name for e in store.list(name_for=directory)] == [
        "Anna Andersson", "Bo (from SIP)", "Anna Andersson"]
    assert sorted(asked) == ["1001", "1002"]  # once per number
    assert store.list()[0].name == ""  # nothing stored: the directory only names the view
    assert store.get(1, name_for=directory).name == "Anna Andersson"


def test_a_failing_directory_falls_back_to_the_stored_name(
        store: HistoryStore, caplog: pytest.LogCaptureFixture) -> None:
    add(store, 1, name="Anna")

    def broken(number: str) -> str:
        raise OSError("directory file missing")

    with caplog.at_level(logging.WARNING, logger="luren.history"):
        assert store.list(name_for=broken)[0].name == "Anna"
    assert "directory lookup" in caplog.text


def test_directory_names_are_cleaned_too(store: HistoryStore) -> None:
    add(store, 1, name="Anna")
    named = store.list(name_for=lambda number: "\x1b[2JEvil\nName" + "x" * 500)[0].name
    assert named.startswith("[2JEvil Namex")
    assert len(named) == NAME_MAX


# -- hostile input ----------------------------------------------------------------------------


def test_long_numbers_and_names_are_cut(store: HistoryStore) -> None:
    entry = store.add("missed", "1" * 1_000_000, "N" * 100_000, 0, T0, 0.0)
    assert entry.number == "1" * NUMBER_MAX
    assert entry.name == "N" * NAME_MAX
    assert store.get(entry.id) == entry


def test_control_and_format_characters_are_removed(store: HistoryStore) -> None:
    entry = store.add("missed", "\x00+46\u202e70\x07 123\x1b[31m", "Evil\r\n\tEve\x00\x9b \ud800",
                      0, T0, 0.0)
    assert entry.number == "+4670 123[31m"
    assert entry.name == "Evil Eve"
    assert store.get(entry.id) == entry


def test_sql_in_the_text_is_only_text(store: HistoryStore) -> None:
    evil = "'); DROP TABLE calls; --"
    entry = store.add("dialed", evil, '" OR 1=1 --', 0, T0, 0.0)
    assert store.get(entry.id).number == evil
    assert store.list("missed") == []
    assert raw(store.path, "SELECT count(*) FROM calls") == [(1,)]


def test_unicode_names_are_kept(store: HistoryStore) -> None:
    entry = store.add("received", "+4681234567", "Åsa Öberg 📞", 0, T0, 0.0)
    assert store.get(entry.id).name == "Åsa Öberg 📞"


def test_missing_name_and_odd_durations(store: HistoryStore) -> None:
    assert store.add("missed", "", None, 0, T0, float("nan")).duration_s == 0.0
    assert store.add("missed", "1", "", 0, T0, -5).duration_s == 0.0
    assert store.add("missed", "1", "", 0, T0, float("inf")).duration_s == 0.0
    assert store.list()[0].name == ""


@pytest.mark.parametrize(("kind", "line", "started"), [
    ("rejected", 0, T0),
    ("missed", -1, T0),
    ("missed", 256, T0),
    ("missed", True, T0),
    ("missed", 0, datetime(2026, 11, 22, 14, 0)),  # naive
])
def test_bad_arguments_are_refused(store: HistoryStore, kind: str, line: int,
                                   started: datetime) -> None:
    with pytest.raises(ValueError):
        store.add(kind, "1001", "Anna", line, started, 0.0)
    assert store.list() == []


def test_bad_list_arguments_are_refused(store: HistoryStore) -> None:
    for call in (lambda: store.list("rejected"), lambda: store.list(limit=-1),
                 lambda: store.list(offset=-1), lambda: store.clear("all")):
        with pytest.raises(ValueError):
            call()


def test_clean_text_refuses_non_text() -> None:
    with pytest.raises(TypeError):
        clean_text(b"1001", NUMBER_MAX)  # type: ignore[arg-type]


# -- time zones -------------------------------------------------------------------------------


def test_started_is_stored_in_utc_and_returned_aware(store: HistoryStore) -> None:
    started = datetime(2026, 7, 1, 9, 30, 15, 123_456, tzinfo=STOCKHOLM)  # 07:30:15 UTC
    entry = store.add("missed", "1", "", 0, started, 0.0)
    stored_us = raw(store.path, "SELECT started_us FROM calls")[0][0]
    assert datetime.fromtimestamp(stored_us / 1e6, UTC) == datetime(2026, 7, 1, 7, 30, 15,
                                                                     123_456, tzinfo=UTC)
    back = store.get(entry.id).started
    assert back.utcoffset() == timedelta(0)
    assert back == started
    assert back.astimezone(STOCKHOLM).replace(tzinfo=None) == datetime(2026, 7, 1, 9, 30, 15,
                                                                       123_456)


def test_order_follows_real_time_across_the_autumn_change(store: HistoryStore) -> None:
    # 2026-10-25 in Stockholm: 03:00 summer time becomes 02:00 winter time, so 02:00-03:00
    # happens twice; fold=1 is the second, later time.
    times = {
        "01:50 CEST": datetime(2026, 10, 25, 1, 50, tzinfo=STOCKHOLM),
        "02:30 CEST": datetime(2026, 10, 25, 2, 30, tzinfo=STOCKHOLM),
        "02:10 CET": datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=STOCKHOLM),
        "02:50 CET": datetime(2026, 10, 25, 2, 50, fold=1, tzinfo=STOCKHOLM),
        # 01:05 UTC, between the two 02:xx hours
        "New York 21:05": datetime(2026, 10, 24, 21, 5, tzinfo=timezone(timedelta(hours=-4))),
    }
    for label in ("02:10 CET", "New York 21:05", "02:50 CET", "02:30 CEST", "01:50 CEST"):
        store.add("received", "1", label, 0, times[label], 0.0)
    listed = store.list()
    assert [e.name for e in listed] == ["02:50 CET", "02:10 CET", "New York 21:05",
                                        "02:30 CEST", "01:50 CEST"]
    for entry in listed:
        # Compared in UTC: Python never finds an ambiguous local time equal to another zone's.
        assert entry.started == times[entry.name].astimezone(UTC)
        if "CE" in entry.name:
            assert entry.started.astimezone(STOCKHOLM).strftime("%H:%M %Z") == entry.name


def test_order_follows_real_time_across_the_spring_change(store: HistoryStore) -> None:
    # 2026-03-29: 02:00 winter time becomes 03:00 summer time, two minutes apart.
    before = store.add("dialed", "1", "", 0, datetime(2026, 3, 29, 1, 59, tzinfo=STOCKHOLM), 0)
    after = store.add("dialed", "1", "", 0, datetime(2026, 3, 29, 3, 1, tzinfo=STOCKHOLM), 0)
    assert ids(store.list()) == [after.id, before.id]
    assert after.started - before.started == timedelta(minutes=2)


# -- kill -9 in the middle of writes ---------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from firmware.history import HistoryStore

    path, bound, first, hold_at = Path(sys.argv[1]), *map(int, sys.argv[2:5])
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    store = HistoryStore(path, max_entries=bound, now=lambda: t0)
    i = first

    def hold_before_commit(sql):
        if sql == "COMMIT" and i == hold_at:  # the INSERT and the trim are done
            sys.stdout.write("holding\\n")
            sys.stdout.flush()
            sys.stdin.read()  # until the parent kills us, inside the transaction

    store._db.set_trace_callback(hold_before_commit)
    while True:
        entry = store.add("missed", f"+46{i:09d}", f"Caller {i}", i % 4,
                          t0 + timedelta(seconds=i), 1.0)
        sys.stdout.write(f"{entry.id}\\n")
        sys.stdout.flush()
        i += 1
""")


def add_until_killed(path: Path, bound: int, first: int, after: int,
                     hold: bool = False) -> list[int]:
    """Run CHILD, SIGKILL it once it has reported `after` commits; every id it reported.

    With `hold`, the child stops inside the transaction of its next add, just before COMMIT,
    and says so; the kill lands there. Without, it lands wherever the child happens to be.
    """
    hold_at = first + after if hold else -1
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(bound), str(first),
                              str(hold_at)], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed: list[int] = []
    try:
        while len(printed) < after or hold:
            line = child.stdout.readline()
            if not line.endswith("\n"):
                child.wait()
                pytest.fail(f"child stopped on its own: {child.stderr.read()}")
            if line == "holding\n":
                break
            printed.append(int(line))
        os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()  # what it printed before the kill landed
    finally:
        child.kill()
        child.wait()
        for pipe in (child.stdin, child.stdout, child.stderr):
            pipe.close()
    assert child.returncode == -signal.SIGKILL
    return printed + [int(line) for line in rest.split("\n")[:-1]]  # complete lines only


def reopen_after_kill(path: Path, bound: int, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Check the killed file like the phone would at boot; the numbers it holds."""
    assert raw(path, "PRAGMA integrity_check") == [("ok",)]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="luren.history"), \
            HistoryStore(path, max_entries=bound, now=now) as store:
        entries = store.list(limit=10**7)
    assert caplog.records == []  # nothing was moved aside or complained about
    assert aside(path.parent) == []
    return entries


@pytest.mark.parametrize("bound", [1_000_000, 50])
def test_kill_9_while_writing_loses_nothing_committed(
        tmp_path: Path, bound: int, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.db"
    for round_ in range(3):
        printed = add_until_killed(path, bound, first=round_ * 100_000, after=150)
        present = set(ids(reopen_after_kill(path, bound, caplog)))
        if bound < len(printed):  # the bound dropped the older ones; the newest are all there
            newest = max(printed)
            assert {i for i in printed if i > newest - bound + 1} <= present
            assert len(present) <= bound
        else:
            assert set(printed) <= present


def test_kill_9_inside_a_transaction_keeps_the_list_before_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.db"
    printed = add_until_killed(path, 20, first=0, after=30, hold=True)
    entries = reopen_after_kill(path, 20, caplog)
    assert ids(entries) == printed[-20:][::-1]  # as it was after the last commit
    assert f"+46{30:09d}" not in [entry.number for entry in entries]


# -- damaged files ----------------------------------------------------------------------------


def test_random_bytes_are_moved_aside_and_a_fresh_history_works(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.db"
    junk = random.Random(7).randbytes(16_384)
    path.write_bytes(junk)
    with caplog.at_level(logging.ERROR, logger="luren.history"):
        store = HistoryStore(path, now=now)
    moved = tmp_path / f"history.db.corrupt-{STAMP}"
    assert moved.read_bytes() == junk
    assert aside(tmp_path) == [moved.name]
    [record] = caplog.records
    message = record.getMessage()
    assert str(path) in message and str(moved) in message
    assert "not a database" in message
    assert "new, empty call history" in message
    assert "phone works normally" in message
    entry = add(store, 1)
    assert store.list() == [entry]
    store.close()
    assert raw(path, "PRAGMA integrity_check") == [("ok",)]


def test_a_stale_log_goes_aside_with_its_file(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(random.Random(1).randbytes(8192))
    Path(f"{path}-wal").write_bytes(random.Random(2).randbytes(8192))
    Path(f"{path}-shm").write_bytes(b"\0" * 32_768)
    with HistoryStore(path, now=now) as store:
        add(store, 1)
        assert len(store.list()) == 1
    assert aside(tmp_path) == [f"history.db.corrupt-{STAMP}", f"history.db.corrupt-{STAMP}-wal"]


def test_damaged_pages_are_found_at_open(tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.db"
    with HistoryStore(path, now=now) as store:
        for minute in range(300):
            add(store, minute, name="A name long enough to fill several pages")
    data = bytearray(path.read_bytes())
    page_size = raw(path, "PRAGMA page_size")[0][0]
    data[2 * page_size:] = random.Random(3).randbytes(len(data) - 2 * page_size)
    path.write_bytes(bytes(data))  # the header and the first pages still look right
    with caplog.at_level(logging.ERROR, logger="luren.history"), \
            HistoryStore(path, now=now) as store:
        assert store.list() == []
        assert add(store, 1).id == 1
    assert aside(tmp_path) == [f"history.db.corrupt-{STAMP}"]
    assert "damaged" in caplog.text


def test_a_file_going_bad_while_the_phone_runs(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.db"
    store = HistoryStore(path, now=now)
    for minute in range(300):
        add(store, minute, name="A name long enough to fill several pages")
    assert len(store.list(limit=1000)) == 300  # now in the connection's page cache
    data = bytearray(path.read_bytes())
    page_size = raw(path, "PRAGMA page_size")[0][0]
    data[2 * page_size:] = random.Random(4).randbytes(len(data) - 2 * page_size)
    with open(path, "r+b") as fh:
        fh.write(data)
    other = sqlite3.connect(path)  # another write makes the store read the file again
    other.execute("PRAGMA user_version = 1")
    other.close()
    with caplog.at_level(logging.ERROR, logger="luren.history"):
        assert store.list(limit=1000) == []
        assert store.unseen_missed() == 0
        entry = add(store, 1)
        assert store.list() == [entry]
    store.close()
    assert aside(tmp_path)[0] == f"history.db.corrupt-{STAMP}"
    assert "malformed" in caplog.text


def test_a_second_damaged_file_in_the_same_second_gets_its_own_name(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    for seed in (1, 2):
        path.write_bytes(random.Random(seed).randbytes(4096))
        HistoryStore(path, now=now).close()
    assert aside(tmp_path) == [f"history.db.corrupt-{STAMP}", f"history.db.corrupt-{STAMP}.1"]


def test_an_empty_file_is_simply_a_new_history(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(b"")
    with HistoryStore(path, now=now) as store:
        add(store, 1)
    assert aside(tmp_path) == []


def test_another_programs_database_is_moved_aside(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE contacts (name TEXT)")
    other.commit()
    other.close()
    with caplog.at_level(logging.ERROR, logger="luren.history"), \
            HistoryStore(path, now=now) as store:
        add(store, 1)
    assert aside(tmp_path) == [f"history.db.corrupt-{STAMP}"]
    assert "not a call history" in caplog.text


def test_a_history_from_newer_firmware_is_kept_aside(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.db"
    with HistoryStore(path, now=now) as store:
        add(store, 1)
    other = sqlite3.connect(path)
    other.execute("PRAGMA user_version = 99")
    other.close()
    with caplog.at_level(logging.ERROR, logger="luren.history"), \
            HistoryStore(path, now=now) as store:
        assert store.list() == []
    assert aside(tmp_path) == [f"history.db.newer-{STAMP}"]
    assert "newer firmware" in caplog.text


def test_an_unwritable_place_is_an_error_not_a_move(tmp_path: Path) -> None:
    folder = tmp_path / "history.db"
    folder.mkdir()
    with pytest.raises(sqlite3.OperationalError):
        HistoryStore(folder, now=now)
    assert aside(tmp_path) == []


# -- schema migrations -------------------------------------------------------------------------


def test_migrations_run_the_missing_steps_once(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "history.db"
    with HistoryStore(path, now=now) as store:
        entry = add(store, 1)
    ran: list[int] = []

    def add_note(db: sqlite3.Connection) -> None:
        ran.append(1)
        db.execute("ALTER TABLE calls ADD COLUMN note TEXT NOT NULL DEFAULT ''")

    monkeypatch.setattr(history, "MIGRATIONS", [*history.MIGRATIONS, add_note])
    for _ in range(2):
        with HistoryStore(path, now=now) as store:
            assert store.list() == [entry]
    assert ran == [1]
    assert raw(path, "PRAGMA user_version") == [(2,)]
    assert "note" in [row[1] for row in raw(path, "PRAGMA table_info(calls)")]


def test_a_failing_migration_changes_nothing(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "history.db"
    with HistoryStore(path, now=now) as store:
        add(store, 1)

    def half_done(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE calls ADD COLUMN note TEXT")
        raise RuntimeError("bug in step 2")

    monkeypatch.setattr(history, "MIGRATIONS", [*history.MIGRATIONS, half_done])
    with pytest.raises(RuntimeError):
        HistoryStore(path, now=now)
    assert raw(path, "PRAGMA user_version") == [(1,)]
    assert "note" not in [row[1] for row in raw(path, "PRAGMA table_info(calls)")]
    assert aside(tmp_path) == []
