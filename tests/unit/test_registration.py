import random

import pytest

from firmware.registration import LineRegistration, RegState, backoff_upper_bound


def test_upper_bound_follows_rfc5626_example() -> None:
    # RFC 5626 4.5: base 30 s, three failures -> min(1800, 30 * 2**3) = 240 s
    assert backoff_upper_bound(3) == 240
    assert backoff_upper_bound(1) == 60
    assert backoff_upper_bound(10) == 1800


@pytest.mark.parametrize("failures", range(1, 12))
def test_wait_is_50_to_100_percent_of_the_bound(failures: int) -> None:
    reg = LineRegistration(rng=random.Random(failures))
    delay = 0.0
    for _ in range(failures):
        delay = reg.failed(503, "Service Unavailable", now=0.0)
    upper = backoff_upper_bound(failures)
    assert 0.5 * upper <= delay <= upper
    assert reg.retry_at == delay


def test_retry_after_is_honoured_exactly() -> None:
    reg = LineRegistration()
    assert reg.failed(503, "Maintenance", now=10.0, retry_after=120) == 120
    assert reg.retry_at == 130.0


def test_success_resets_failures() -> None:
    reg = LineRegistration()
    reg.failed(408, "Timeout", now=0.0)
    reg.failed(408, "Timeout", now=0.0)
    reg.succeeded(200, "OK")
    assert (reg.state, reg.failures, reg.retry_at) == (RegState.REGISTERED, 0, None)
    assert reg.in_service


def test_disabled_line() -> None:
    assert LineRegistration(enabled=False).state is RegState.DISABLED
