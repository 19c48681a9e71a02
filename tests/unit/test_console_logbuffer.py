"""The console's in-memory log (firmware/console/logbuffer.py): masked as stored, bounded, told
to followers; and set_level for the phone's loggers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from firmware.console.logbuffer import LEVELS, LogBuffer, set_level
from firmware.console.masking import MASK, Masker

SECRET = "Line-Pw-5531"


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of its own (not propagating), left as it was found."""
    log = logging.getLogger("luren.test.console.logbuffer")
    level, propagate = log.level, log.propagate
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    log.setLevel(level)
    log.propagate = propagate


@pytest.fixture
def buffer(logger: logging.Logger) -> Iterator[LogBuffer]:
    buf = LogBuffer(Masker([SECRET]))
    logger.addHandler(buf)
    yield buf
    logger.removeHandler(buf)


@pytest.fixture
def restore_levels() -> Iterator[None]:
    """Put the levels of the loggers set_level touches back afterwards."""
    loggers = [logging.getLogger(name) for name in ("luren", "luren.sip", "luren.test")]
    levels = [log.level for log in loggers]
    yield
    for log, level in zip(loggers, levels, strict=True):
        log.setLevel(level)


def test_records_are_masked_as_they_are_stored(logger: logging.Logger, buffer: LogBuffer) -> None:
    logger.info("REGISTER with %s", SECRET)
    logger.warning("provisioning fetch with password=%s", "never-known")
    lines = buffer.tail(10)
    assert len(lines) == 2
    assert SECRET not in lines[0] and lines[0].endswith(f"REGISTER with {MASK}")
    assert "never-known" not in lines[1] and lines[1].endswith(f"password={MASK}")


def test_lines_carry_level_and_logger_name(logger: logging.Logger, buffer: LogBuffer) -> None:
    logger.error("disk full")
    (line,) = buffer.tail(1)
    assert " ERROR luren.test.console.logbuffer: disk full" in line


def test_tail_gives_the_last_lines_oldest_first(logger: logging.Logger, buffer: LogBuffer) -> None:
    for number in range(5):
        logger.info("line %d", number)
    assert [line[-6:] for line in buffer.tail(3)] == ["line 2", "line 3", "line 4"]
    assert len(buffer.tail(50)) == 5


@pytest.mark.parametrize("count", [0, -1, -100])
def test_tail_of_nothing_or_less_is_empty(logger: logging.Logger, buffer: LogBuffer,
                                          count: int) -> None:
    logger.info("something")
    assert buffer.tail(count) == []


def test_only_capacity_lines_are_kept(logger: logging.Logger) -> None:
    small = LogBuffer(Masker(), capacity=3)
    logger.addHandler(small)
    try:
        for number in range(10):
            logger.info("n%d", number)
    finally:
        logger.removeHandler(small)
    assert [line.rsplit(" ", 1)[-1] for line in small.tail(100)] == ["n7", "n8", "n9"]


def test_followers_get_each_new_masked_line(logger: logging.Logger, buffer: LogBuffer) -> None:
    seen: list[str] = []
    buffer.follow(seen.append)
    logger.info("one %s", SECRET)
    logger.info("two")
    assert [line.rsplit(": ", 1)[-1] for line in seen] == [f"one {MASK}", "two"]
    assert seen == buffer.tail(2)


def test_an_unfollowed_follower_hears_no_more(logger: logging.Logger, buffer: LogBuffer) -> None:
    seen: list[str] = []
    buffer.follow(seen.append)
    logger.info("before")
    buffer.unfollow(seen.append)
    buffer.unfollow(seen.append)  # twice is harmless
    logger.info("after")
    assert len(seen) == 1 and seen[0].endswith("before")


def test_a_failing_follower_is_dropped_and_logging_goes_on(logger: logging.Logger,
                                                            buffer: LogBuffer) -> None:
    calls: list[str] = []
    good: list[str] = []

    def broken(line: str) -> None:
        calls.append(line)
        raise RuntimeError("the console went away")

    buffer.follow(broken)
    buffer.follow(good.append)
    logger.info("first")
    logger.info("second")
    assert len(calls) == 1  # dropped after its failure
    assert [line[-6:] for line in good] == [" first", "second"]
    assert len(buffer.tail(10)) == 2


def test_records_from_other_threads_are_kept(logger: logging.Logger, buffer: LogBuffer) -> None:
    def work(name: str) -> None:
        for number in range(50):
            logger.info("%s %d", name, number)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(buffer.tail(1000)) == 200


def test_a_record_that_cannot_be_formatted_does_not_break_logging(
        buffer: LogBuffer, monkeypatch: pytest.MonkeyPatch) -> None:
    handled: list[logging.LogRecord] = []
    monkeypatch.setattr(buffer, "handleError", handled.append)

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("luren.test", logging.INFO, __file__, 1, msg, args, None)

    buffer.handle(record("%d apples", "not a number"))  # the handler itself meets the error
    buffer.handle(record("fine"))
    assert len(handled) == 1
    assert [line[-4:] for line in buffer.tail(10)] == ["fine"]


# --- set_level --------------------------------------------------------------------------------


@pytest.mark.usefixtures("restore_levels")
@pytest.mark.parametrize("word", ["debug", "INFO", "Warning", "error"])
def test_set_level_sets_the_sip_logger(word: str) -> None:
    assert set_level("luren.sip", word) is None
    assert logging.getLogger("luren.sip").level == LEVELS[word.lower()]


@pytest.mark.usefixtures("restore_levels")
def test_set_level_without_a_name_sets_the_phone_root_logger() -> None:
    assert set_level("", "warning") is None
    assert logging.getLogger("luren").level == logging.WARNING
    assert set_level("luren", "debug") is None
    assert logging.getLogger("luren").level == logging.DEBUG


@pytest.mark.usefixtures("restore_levels")
@pytest.mark.parametrize("word", ["loud", "", "critical", "10", "warn"])
def test_an_unknown_level_word_is_refused_in_words(word: str) -> None:
    before = logging.getLogger("luren.sip").level
    problem = set_level("luren.sip", word)
    assert problem is not None
    assert "unknown level" in problem and all(name in problem for name in LEVELS)
    assert logging.getLogger("luren.sip").level == before


@pytest.mark.usefixtures("restore_levels")
def test_a_lowered_level_lets_debug_records_reach_the_buffer(buffer: LogBuffer) -> None:
    child = logging.getLogger("luren.test.console.level")
    child.addHandler(buffer)
    try:
        set_level("luren.test", "warning")
        child.info("hidden")
        set_level("luren.test", "debug")
        child.debug("shown")
    finally:
        child.removeHandler(buffer)
    assert [line[-5:] for line in buffer.tail(10)] == ["shown"]
