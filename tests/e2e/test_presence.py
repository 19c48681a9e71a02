"""People and presence against real peers: message waiting (MWI)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import PhoneFactory, wait_registered
from tools.pbx.kamailio import Kamailio
from tools.pbx.sipprobe import sip_request
from tools.pbx.waiting import wait_until
from tools.phoneproc import PhoneProcess

pytestmark = pytest.mark.e2e


def summary(waiting: bool, new: int, old: int) -> str:
    return (f"Messages-Waiting: {'yes' if waiting else 'no'}\r\n"
            f"Message-Account: sip:555@127.0.0.1\r\nVoice-Message: {new}/{old} (0/0)\r\n")


def test_unsolicited_message_waiting_lights_and_clears_the_led(
        pbx: Kamailio, make_phone: PhoneFactory) -> None:
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    port = phone.status()["engine"]["sip_port"]

    def notify(body: str) -> int:
        """An unsolicited message-summary NOTIFY, as a voicemail server sends one unasked."""
        return sip_request(port, "NOTIFY", f"sip:1001@127.0.0.1:{port}",
                           to_uri="sip:1001@127.0.0.1", from_uri="sip:555@127.0.0.1",
                           extra_headers={"Event": "message-summary",
                                          "Subscription-State": "active"},
                           body=body, content_type="application/simple-message-summary").status

    assert notify(summary(True, 2, 5)) == 200
    phone.wait_status(lambda s: s["lines"][0]["messages"] == {"new": 2, "old": 5}, 5,
                      "the message count")
    assert phone.leds()["message"]["pattern"] == "slow_blink"
    phone.wait_text("2 new messages", 5)
    assert notify(summary(False, 0, 7)) == 200
    phone.wait_status(lambda s: s["lines"][0]["messages"] == {"new": 0, "old": 7}, 5,
                      "the cleared count")
    assert phone.leds()["message"]["pattern"] == "off"


def test_solicited_message_waiting_from_the_voicemail_server(
        pbx: Kamailio, make_phone: PhoneFactory) -> None:
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    pbx.wait_message(lambda m: m.method == "SUBSCRIBE" and m.header("Event") == "message-summary"
                     and m.direction == "in", 10, what="the phone's MWI subscription")
    pbx.wait_message(lambda m: m.status == 200 and m.cseq_method == "SUBSCRIBE", 10,
                     what="the subscription accepted")
    pbx.publish_message_summary("1001", 3, 1)
    phone.wait_status(lambda s: s["lines"][0]["messages"] == {"new": 3, "old": 1}, 10,
                      "the count from the voicemail server")
    assert phone.leds()["message"]["pattern"] == "slow_blink"
    pbx.publish_message_summary("1001", 0, 4)
    phone.wait_status(lambda s: s["lines"][0]["messages"] == {"new": 0, "old": 4}, 10,
                      "the cleared count")
    assert phone.leds()["message"]["pattern"] == "off"


# The note "Hämtar barn" by multi-tap: h, ä, m, t, a, r, space, small letters, b, (keep), a, r, n
NOTE_KEYS = ("44", "22222", "6", "8", "2", "777", "#", "*", "22", "right", "2", "777", "66")
MENU_WORDS = {"en": ("until", "Profile", "Note"), "sv": ("till", "Profil", "Notering")}


def choose(phone: PhoneProcess, label: str) -> None:
    """Move down the list on the screen to the row starting with `label`, and press ok."""
    rows = phone.screen()
    for _ in range(20):
        if any(row.startswith(">" + label) for row in rows):
            phone.key("ok")
            return
        rows = phone.key("down")["screen"]["rows"]
    raise AssertionError(f"no {label!r} in the list: {rows}")


@pytest.mark.parametrize("language", ["en", "sv"])
def test_my_referral_reaches_a_colleague_who_follows_me(
        pbx: Kamailio, make_phone: PhoneFactory, tmp_path: Path, language: str) -> None:
    """The referral with its end time, then the profile note saved from the menu (which
    publishes again), in the publishing phone's language."""
    until, profile, note = MENU_WORDS[language]
    me = make_phone("1001", pbx.port, extra='[keys]\nsoft4 = "referral"\n', language=language)
    colleague_dir = tmp_path / "colleague-directory.xml"
    colleague_dir.write_text('<directory><contact favourite="yes"><name>Anna Berg</name>'
                             '<number type="extension">1001</number></contact></directory>')
    # the colleague's favourites are followed (presence subscriptions) from its start
    colleague = make_phone("1002", pbx.port,
                           extra=f'[directory]\nfile = "{colleague_dir}"\n')
    wait_registered(me)
    wait_registered(colleague)
    me.key("soft4")
    me.key("down")
    me.key("ok")  # Lunch, for an hour
    shown = re.search(rf"Lunch {until} (\d\d:\d\d)", me.wait_text(f"Lunch {until}", 5))
    assert shown is not None
    lunch = f"Lunch {until} {shown[1]}"
    publish = pbx.wait_message(lambda m: m.method == "PUBLISH" and lunch in m.body, 10,
                               what="the referral published with its end")
    assert "closed" in publish.body
    seen = colleague.wait_status(lambda s: s["presence"].get("1001", {}).get("note") == lunch
                                 and s, 15, "the colleague to see the referral and its end")
    assert seen["presence"]["1001"]["available"] is False

    me.key("menu")
    choose(me, profile)
    choose(me, note)
    for press in NOTE_KEYS:
        if press == "right":
            me.key(press)
        else:
            me.keys(press)
    assert "Hämtar barn" in me.screen_text()
    me.key("ok")  # saved: published again, with the note
    me.key("menu")  # every menu closed
    with_note = f"{lunch} – Hämtar barn"
    pbx.wait_message(lambda m: m.method == "PUBLISH" and with_note in m.body, 10,
                     what="the referral published again with the profile note")
    colleague.wait_status(lambda s: s["presence"]["1001"]["note"] == with_note, 15,
                          "the colleague to see the note")
    me.wait_text(lunch, 5)  # the idle screen shows the referral (the note is for colleagues)


def test_blf_key_follows_a_colleagues_call(pbx: Kamailio, make_phone: PhoneFactory,
                                           make_baresip) -> None:
    phone = make_phone("1001", pbx.port,
                       extra='[[blf]]\nkey = "line2"\nuser = "1003"\nlabel = "Bertil"\n')
    caller = make_baresip("1002")
    callee = make_baresip("1003")
    wait_registered(phone)

    def led() -> tuple[str, str]:
        state = phone.leds()["line2"]
        return state["pattern"], state["colour"]

    wait_until(lambda: led() == ("on", "green"), 10, what="the BLF key idle (green)")
    caller.dial(caller.uri_of("1003"))
    wait_until(lambda: led() == ("fast_blink", "red"), 10, what="the BLF key ringing")
    assert phone.status()["blf"]["1003"]["caller"] == "1002"
    callee.wait_event("CALL_INCOMING", 5)
    callee.answer()
    wait_until(lambda: led() == ("on", "red"), 10, what="the BLF key busy")
    caller.hangup()
    wait_until(lambda: led() == ("on", "green"), 15, what="the BLF key idle again")


def test_blf_key_picks_up_a_call_ringing_at_a_colleague(pbx: Kamailio, make_phone: PhoneFactory,
                                                        make_baresip) -> None:
    """No pickup code at the PBX: the phone sends its INVITE with Replaces (early-only) to
    the caller, who takes it instead of the colleague's ringing phone (RFC 3891)."""
    phone = make_phone("1001", pbx.port, extra='[[blf]]\nkey = "line2"\nuser = "1003"\n')
    caller = make_phone("1002", pbx.port)
    colleague = make_baresip("1003")
    wait_registered(phone)
    wait_registered(caller)
    caller.dial("1003")
    colleague.wait_event("CALL_INCOMING", 10)
    phone.wait_status(lambda s: s["blf"].get("1003", {}).get("state") == "ringing", 10,
                      "the colleague's phone ringing")
    phone.key("line2")
    picked = phone.wait_status(lambda s: s["calls"] and s["calls"][0]["state"] == "connected"
                               and s, 10, "the call picked up")
    assert picked["calls"][0]["remote"] == "1002"
    caller.wait_status(lambda s: s["calls"] and s["calls"][0]["state"] == "connected"
                       and s["calls"][0]["remote"] == "1001", 10,
                       "the caller now talking to 1001")
    colleague.wait_event("CALL_CLOSED", 10)  # the colleague's phone stopped ringing
    invite = pbx.wait_message(lambda m: m.method == "INVITE" and m.has_header("Replaces"), 5)
    assert "early-only" in invite.header("Replaces")
