"""The user's referral on the phone's clock: what is published to colleagues (end time and
profile note), daily schedules across both daylight-saving changes of 2026 in Stockholm, and a
time-zone change made in the settings menu. Time moves only through ManualClock.advance()."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from board.sim import sim_board
from firmware.clock import ManualClock
from firmware.config import parse_config
from firmware.config.overrides import OVERRIDES_FILE, OverrideStore
from firmware.my_referral import MyReferral
from firmware.phone import Phone
from firmware.phone_settings import PhoneSettings
from firmware.referral import (
    AVAILABLE,
    LUNCH,
    Recurrence,
    ReferralBook,
    ReferralWatch,
    ScheduledReferral,
    busy,
)
from firmware.sip import events as ev
from tests.unit.test_call_features import keys, make_phone, screen
from tests.unit.test_phone_controller import RecordingSip

STO = ZoneInfo("Europe/Stockholm")


def published(sip: RecordingSip) -> tuple[Any, ...]:
    """The last presence published: ("publish_presence", line, available, note, activity)."""
    return [sent for sent in sip.sent if sent[0] == "publish_presence"][-1]


# -- what colleagues get ---------------------------------------------------------------------
def test_the_published_note_carries_the_end_time_and_the_profile_note() -> None:
    clock = ManualClock(wall_start=datetime(2026, 3, 2, 12, tzinfo=STO).timestamp())
    sent: list[tuple[bool, str, str]] = []
    note = ["Hämtar barn"]
    mine = MyReferral(clock, lambda: "sv", lambda: STO, None,
                      publish=lambda *args: sent.append(args), note=lambda: note[0])
    mine.start()
    assert sent == [(True, "Tillgänglig – Hämtar barn", "")]
    mine.set(busy(mine.now_local(), 120))
    assert mine.text() == "Upptagen 120 min"  # the idle screen counts down ...
    assert sent[-1] == (False, "Upptagen till 14:00 – Hämtar barn", "busy")  # ... not the note
    note[0] = ""
    mine.rearm_publish()  # what saving the profile note does
    assert sent[-1] == (False, "Upptagen till 14:00", "busy")
    clock.advance(120 * 60)
    assert sent[-1] == (True, "Tillgänglig", "")


def test_the_profile_note_saved_from_the_menu_is_published_with_the_referral(
        tmp_path: Path) -> None:
    """Needs the phone to hand its profile note to MyReferral (Phone: note=...)."""
    phone, sip, _ = make_phone({"keys": {"soft4": "referral"}}, tmp_path)
    keys(phone, "soft4", "down", "ok")  # Lunch: 12:06 until 13:06 on the manual clock
    assert "Lunch until 13:06" in screen(phone)
    assert PhoneSettings(phone).set_note("Hämtar barn") is None  # the Profile menu's save
    assert published(sip)[2:] == (False, "Lunch until 13:06 – Hämtar barn", "away")


# -- daylight saving time on the phone's clock ---------------------------------------------
def run_watch_until(clock: ManualClock, watch: ReferralWatch, end: datetime) -> None:
    """Advance the clock from one of the watch's timers to the next until `end`."""
    while watch.timer is not None and clock.wall_time(UTC) < end:
        clock.advance(watch.timer.remaining())


def stockholm(clock: ManualClock) -> datetime:
    """The clock's wall time in Stockholm. (Not `clock.wall_time(STO)`: after advance() across
    a daylight-saving change that keeps the wall-clock reading of the start and is an hour
    off, firmware/clock.py adds the offset to a local time.)"""
    return clock.wall_time(UTC).astimezone(STO)


@pytest.mark.parametrize(("before", "after", "hours_between"), [
    (date(2026, 3, 28), date(2026, 3, 29), 23),  # 02:00 -> 03:00: a day of 23 hours
    (date(2026, 10, 24), date(2026, 10, 25), 25),  # 03:00 -> 02:00: a day of 25 hours
], ids=["spring-forward", "fall-back"])
def test_a_daily_noon_referral_starts_at_noon_on_both_sides_of_the_change(
        before: date, after: date, hours_between: int) -> None:
    clock = ManualClock(wall_start=datetime.combine(before, time(9), STO).timestamp())
    daily = ScheduledReferral(LUNCH, date(2026, 1, 1), time(12), time(13),
                              recurrence=Recurrence.DAILY, tz="Europe/Stockholm")
    changes: list[tuple[str, datetime, float]] = []
    watch = ReferralWatch(ReferralBook(schedules=[daily]), clock, lambda referral, _: (
        changes.append((referral.type_key, stockholm(clock), clock.now()))))
    watch.start()
    run_watch_until(clock, watch, datetime.combine(after, time(14), STO))
    starts = [(when, at) for kind, when, at in changes if kind == LUNCH]
    assert [when.strftime("%Y-%m-%d %H:%M:%S %z") for when, _ in starts] == [
        f"{before} 12:00:00 {'+0100' if before.month == 3 else '+0200'}",
        f"{after} 12:00:00 {'+0200' if after.month == 3 else '+0100'}"]
    assert starts[1][1] - starts[0][1] == hours_between * 3600  # on the monotonic clock
    assert [(kind, f"{when:%d %H:%M}") for kind, when, _ in changes] == [
        (AVAILABLE, f"{before.day} 09:00"), (LUNCH, f"{before.day} 12:00"),
        (AVAILABLE, f"{before.day} 13:00"), (LUNCH, f"{after.day} 12:00"),
        (AVAILABLE, f"{after.day} 13:00")]


# -- a time-zone change made in the settings menu --------------------------------------------
def phone_with_overrides(tmp_path: Path) -> tuple[Phone, RecordingSip, ManualClock]:
    """A phone (Stockholm, English) whose settings menu keeps its changes as overrides."""
    base = parse_config({"device": {"language": "en", "time_zone": "Europe/Stockholm"},
                         "keys": {"soft4": "referral"},
                         "lines": [{"user": "1001", "registrar": "127.0.0.1:5060"}]})
    store = OverrideStore(tmp_path / OVERRIDES_FILE, base=base)
    clock, sip = ManualClock(), RecordingSip()
    phone = Phone(store.apply(), clock, sip, [sim_board()], rng=random.Random(1),
                  data_dir=tmp_path, overrides=store)
    phone.start()
    phone.on_sip_event(ev.RegistrationChanged(0, True, 200, "OK", 300))
    return phone, sip, clock


def choose(phone: Phone, label: str) -> None:
    """Move to the item of the top list named `label` (after its mark), and press ok."""
    items = [item.label.lstrip("* ") for item in phone.terminals[0].views[-1].items]
    index = next(i for i, item in enumerate(items) if item.startswith(label))
    for _ in range(index):
        keys(phone, "down")
    keys(phone, "ok")


def test_a_time_zone_change_moves_the_end_shown_but_not_the_end(tmp_path: Path) -> None:
    phone, sip, clock = phone_with_overrides(tmp_path)
    # the manual clock starts on Wednesday 18 Nov 2026 at 12:06:40 in Stockholm
    keys(phone, "soft4", "down", "ok")  # Lunch, 60 minutes
    assert "Lunch until 13:06" in screen(phone)
    ends = phone.referral.current().until
    keys(phone, "menu")
    choose(phone, "Time zone")
    choose(phone, "London")  # as the user does it: a local override, used at once
    keys(phone, "menu")  # closes every menu: the idle screen
    assert phone.config.device.time_zone == "Europe/London"
    assert "Lunch until 12:06" in screen(phone) and "13:06" not in screen(phone)
    assert published(sip)[3] == "Lunch until 12:06"  # published again in the new zone
    assert phone.referral.current().until == ends  # the same instant
    clock.advance(3599)  # 12:06:39 in London (13:06:39 in Stockholm): still lunch
    assert "Lunch until 12:06" in screen(phone)
    assert clock.wall_time(UTC) < ends.astimezone(UTC)
    clock.advance(1)  # the end, to the second
    assert clock.wall_time(UTC) == ends.astimezone(UTC)
    assert "Lunch" not in screen(phone)
    assert published(sip)[2:] == (True, "Available", "")
