import pytest

from firmware.dialplan import DialPlan, DialPlanError, Match

DEFAULT = "112|11414|90000|555|[1-9]xxx|0[1-9]x.T|00x.T|*x.T|#x.T"


@pytest.mark.parametrize(("digits", "match", "on_timeout"), [
    ("1", Match.PARTIAL, False),
    ("100", Match.PARTIAL, False),
    ("1002", Match.COMPLETE, True),
    ("112", Match.COMPLETE, True),
    ("555", Match.COMPLETE, True),
    ("0", Match.PARTIAL, False),
    ("0812345", Match.PARTIAL, True),
    ("0046812345", Match.PARTIAL, True),
    ("*21", Match.PARTIAL, True),
])
def test_default_plan(digits: str, match: Match, on_timeout: bool) -> None:
    verdict = DialPlan(DEFAULT).check(digits)
    assert (verdict.match, verdict.on_timeout) == (match, on_timeout)


def test_first_complete_alternative_wins_over_longer_ones() -> None:
    assert DialPlan("112|1xxx").check("112").match is Match.COMPLETE


def test_no_alternative_matches() -> None:
    plan = DialPlan("[2-4]xx")
    assert plan.check("5").match is Match.NONE
    assert plan.check("2345").match is Match.NONE


def test_sets_and_repeats() -> None:
    plan = DialPlan("[135]x.#")
    assert plan.check("1").match is Match.PARTIAL
    assert plan.check("1999#").match is Match.COMPLETE
    assert plan.check("2").match is Match.NONE


@pytest.mark.parametrize("spec", ["", "1|", ".1", "1T2", "[12", "1a", "[5-1]"])
def test_bad_plans_are_refused_with_a_reason(spec: str) -> None:
    with pytest.raises(DialPlanError) as err:
        DialPlan(spec)
    assert str(err.value)
