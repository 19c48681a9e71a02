"""The DECT base end to end: a phone process with the dect-base profile, the simulated radio
module in its own process on a pty, handsets driven through the module's control socket, a real
Kamailio and baresip. Registration by PIN inside a window, group ringing, a call between two
handsets, the call limit, de-registration, and a module reset in the middle of a call.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.conftest import USERS, wait_registered
from tests.harness.audio_check import dominant_frequency, read_wav
from tests.harness.baresip import Baresip
from tests.harness.dect import DectModuleProcess
from tools.pbx.kamailio import Kamailio
from tools.pbx.waiting import wait_until
from tools.phoneproc import REPO_ROOT, PhoneProcess

pytestmark = pytest.mark.e2e

PIN = "2580"


def base_config(pbx: Kamailio, module: DectModuleProcess, extra: str = "") -> str:
    line = '[[lines]]\nuser = "{0}"\npassword = "{1}"\nregistrar = "127.0.0.1:{2}"\n'
    return ('[sip]\nport = 0\nbind_address = "127.0.0.1"\n'
            + line.format("1001", USERS["1001"], pbx.port)
            + line.format("1003", USERS["1003"], pbx.port)
            + f'[voicemail]\nenabled = false\n[console]\nport = "pty"\n'
              f'[dect]\nport = "{module.pty}"\npin = "{PIN}"\n'
            + "".join(f'[[handsets]]\nnumber = {n}\nline = {line}\nname = "{name}"\n'
                      for n, line, name in ((1, 1, "Anna"), (2, 1, "Bo"), (3, 1, "Cecilia"),
                                            (4, 2, "Lager")))
            + extra)


@pytest.fixture
def module(tmp_path: Path) -> Iterator[DectModuleProcess]:
    with DectModuleProcess(tmp_path / "module") as started:
        yield started


@pytest.fixture
def phones() -> Iterator[list[PhoneProcess]]:
    started: list[PhoneProcess] = []
    yield started
    for phone in started:
        phone.stop()


def start_base(tmp_path: Path, pbx: Kamailio, module: DectModuleProcess,
               phones: list[PhoneProcess], extra: str = "", *, board: str = "sim-dect-base",
               env: dict[str, str] | None = None) -> PhoneProcess:
    phone = PhoneProcess(tmp_path / "base", base_config(pbx, module, extra), test_clock=True,
                         board=board, env=env)
    phones.append(phone.start(30))
    wait_registered(phone)
    return phone


def command(phone: PhoneProcess, line: str) -> dict[str, Any]:
    return phone.request("POST", "/api/v1/command", {"command": line})


def open_window(phone: PhoneProcess, module: DectModuleProcess) -> None:
    """The console's (and API's) `dect window`, and the module seeing it open."""
    answer = command(phone, "dect window")
    assert answer["ok"], answer
    wait_until(lambda: module.listing()["window"]["open"], 5, 0.02, "the window to open")


def register_up_to(phone: PhoneProcess, module: DectModuleProcess, total: int) -> None:
    """Register new handsets, one window each, until the base has `total`."""
    def known() -> int:
        return len(command(phone, "dect")["data"]["dect"]["handsets"])

    for _ in range(total - known()):
        open_window(phone, module)
        assert module.register(PIN)["result"] == "registered"
    wait_until(lambda: known() == total, 10, 0.05, f"{total} handsets at the base")


def test_registration_group_ringing_and_a_module_reset_mid_call(
        tmp_path: Path, pbx: Kamailio, module: DectModuleProcess,
        phones: list[PhoneProcess], make_baresip: Any) -> None:
    phone = start_base(tmp_path, pbx, module, phones)
    assert module.register(PIN)["result"] == "window_closed"  # no window yet
    open_window(phone, module)
    assert module.register("1111")["result"] == "wrong_pin"
    assert module.register(PIN)["result"] == "registered"
    wait_until(lambda: len(command(phone, "dect")["data"]["dect"]["handsets"]) == 1, 10,
               0.05, "handset 1 at the base")
    register_up_to(phone, module, 4)  # handsets 2-4 (each window takes one)
    status = command(phone, "dect")
    assert [h["name"] for h in status["data"]["dect"]["handsets"]] == [
        "Anna", "Bo", "Cecilia", "Lager"]
    wait_until(lambda: module.handset(1)["name"] == "Anna", 5, 0.05, "the handset's name")
    wait_until(lambda: module.handset(1)["display"][1:2] == ["1001"], 5, 0.05,
               "the idle screen on handset 1")

    caller: Baresip = make_baresip("1002")
    caller.dial(caller.uri_of("1001"))
    wait_until(lambda: all(module.handset(n)["ringing"] for n in (1, 2, 3)), 10, 0.05,
               "handsets 1-3 ringing")
    assert not module.handset(4)["ringing"]  # another line
    assert "1002" in module.handset(2)["caller"]
    module.do(2, "offhook")  # Bo answers
    caller.wait_event("CALL_ESTABLISHED", 10)
    wait_until(lambda: not module.handset(1)["ringing"] and not module.handset(3)["ringing"], 5,
               0.05, "the other handsets to stop ringing")
    wait_until(lambda: module.handset(2)["audio_channel"] == 0, 5, 0.05,
               "a voice channel for handset 2")
    assert len(phone.status()["calls"]) == 1
    heard = phone.data_dir / "audio" / "handset2"  # handset 2's own earpiece (simulated)
    wait_until(lambda: any(f.stat().st_size > 44 + 2 * 16000 * 2
                           for f in heard.glob("earpiece-*.wav")), 10, 0.05,
               "two seconds of the call in handset 2's earpiece")

    module.request({"do": "reset", "reason": "watchdog"})  # the radio restarts mid-call
    caller.wait_event("CALL_CLOSED", 10)  # the base ended the call: nothing left dangling
    wait_until(lambda: phone.status()["calls"] == [], 10, 0.05, "no call at the base")
    wait_until(lambda: len(command(phone, "dect")["data"]["dect"]["handsets"]) == 4, 10,
               0.05, "the handsets back")
    wait_until(lambda: module.handset(2)["audio_channel"] is None, 10, 0.05,
               "no voice channel for handset 2")
    phone.advance(10)  # past the end-of-call screen
    wait_until(lambda: module.handset(2)["display"][1:2] == ["1001"], 10, 0.05,
               "handset 2 idle again")
    assert "module restarted" in phone.log_tail(300)
    recording = max(heard.glob("earpiece-*.wav"), key=lambda f: f.stat().st_size)
    wait_until(lambda: _closed_wav(recording), 10, 0.05, "handset 2's earpiece file closed")
    assert abs(dominant_frequency(recording, 0.5) - 1000) < 5  # the caller's 1 kHz tone


def _closed_wav(path: Path) -> bool:
    """The recorder has written the WAV header (it does when the audio path closes)."""
    try:
        read_wav(path)
    except (wave.Error, EOFError):
        return False
    return True


def test_a_call_between_handsets_the_call_limit_and_deregistration(
        tmp_path: Path, pbx: Kamailio, module: DectModuleProcess,
        phones: list[PhoneProcess], make_baresip: Any) -> None:
    phone = start_base(tmp_path, pbx, module, phones,
                       "[device]\nmax_calls = 1\n[sim]\nmic_tone_hz = 700\n")
    register_up_to(phone, module, 4)
    module.do(1, "offhook")
    module.do(1, "dial", digits="**4")  # Anna calls handset 4: an internal call, no PBX
    wait_until(lambda: module.handset(4)["ringing"], 10, 0.05, "handset 4 ringing")
    assert "Anna" in module.handset(4)["caller"]
    assert "Internsamtal" in " ".join(module.handset(4)["display"])
    module.do(4, "offhook")
    wait_until(lambda: [t["intercom"] for t in phone.status()["terminals"][:4]] ==
               [4, None, None, 1], 10, 0.05, "handsets 1 and 4 talking")
    wait_until(lambda: (module.handset(1)["audio_channel"], module.handset(4)["audio_channel"])
               == (0, 1), 5, 0.05, "a voice channel each")
    assert phone.status()["calls"] == [] and not pbx.messages("INVITE")  # no SIP at all
    heard = phone.data_dir / "audio" / "handset4"  # Anna's microphone, in handset 4's ear
    wait_until(lambda: any(f.stat().st_size > 44 + 2 * 16000 * 2
                           for f in heard.glob("earpiece-*.wav")), 10, 0.05,
               "two seconds of the internal call in handset 4's earpiece")

    # The one call this base may have: Bo calls out; the next caller gets busy, and a
    # handset that dials a message (the internal call takes no call slot).
    far: Baresip = make_baresip("1002", auto_answer=True)
    module.do(2, "offhook")
    module.do(2, "dial", digits="1002#")
    far.wait_event("CALL_ESTABLISHED", 10)
    caller: Baresip = make_baresip("1005")
    caller.dial(caller.uri_of("1001"))
    closed = caller.wait_event("CALL_CLOSED", 10)
    assert "486" in str(closed) or "Busy" in str(closed), closed
    assert not module.handset(3)["ringing"]
    module.do(3, "offhook")
    module.do(3, "dial", digits="1002#")
    wait_until(lambda: "Alla linjer upptagna" in " ".join(module.handset(3)["display"]), 10,
               0.05, "the all-busy message on handset 3")
    module.do(3, "onhook")
    module.do(2, "onhook")
    far.wait_event("CALL_CLOSED", 10)

    module.do(4, "onhook")  # the internal call ends at both handsets
    wait_until(lambda: all(t["intercom"] is None for t in phone.status()["terminals"]), 10,
               0.05, "the internal call over")
    recording = max(heard.glob("earpiece-*.wav"), key=lambda f: f.stat().st_size)
    wait_until(lambda: _closed_wav(recording), 10, 0.05, "handset 4's earpiece file closed")
    assert abs(dominant_frequency(recording, 0.5) - 700) < 5  # Anna's microphone
    module.do(1, "onhook")
    wait_until(lambda: phone.status()["calls"] == [], 10, 0.05, "no call at the base")
    answer = command(phone, "dect deregister 3")
    assert answer["ok"], answer
    wait_until(lambda: [h["number"] for h in command(phone, "dect")["data"]["dect"]
                        ["handsets"]] == [1, 2, 4], 10, 0.05, "handset 3 gone")
    assert not command(phone, "dect deregister 3")["ok"]


def test_each_handsets_call_goes_through_its_voice_channels_alsa_devices(
        tmp_path: Path, pbx: Kamailio, module: DectModuleProcess,
        phones: list[PhoneProcess], make_baresip: Any) -> None:
    """The dect-base profile maps the module's voice channels to ALSA devices (here the `file`
    plugin over `null`): two handsets in two calls at once, each call's audio both ways
    through the devices of the channel its handset was given, and nothing else."""
    rate, tones = 16000, {0: 1500, 1: 500}  # what each channel's microphone side carries
    conf, profile = tmp_path / "asoundrc", tmp_path / "dect-alsa.toml"
    sim = Path(REPO_ROOT / "board" / "profiles" / "sim-dect-base.toml").read_text()
    parts, tables = [], ["\n[audio]\npace = true  # the null plugin keeps no time\n"]
    for channel, freq in tones.items():
        infile = tmp_path / f"channel{channel}.in.raw"
        t = np.arange(90 * rate) / rate
        infile.write_bytes((np.sin(2 * np.pi * freq * t) * 8000).astype("<i2").tobytes())
        parts.append(
            f'pcm.dect{channel}_cap {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
            f'  file "/dev/null"\n  infile "{infile}"\n  format "raw"\n}}\n'
            f'pcm.dect{channel}_play {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
            f'  file "{tmp_path / f"channel{channel}.out.wav"}"\n  format "wav"\n}}\n')
        tables.append(f'[audio.channels.{channel}]\ncapture = "dect{channel}_cap"\n'
                      f'playback = "dect{channel}_play"\n')
    conf.write_text("".join(parts))
    profile.write_text(sim.replace('name = "sim-dect-base"', 'name = "dect-alsa"')
                       + "".join(tables))
    phone = start_base(tmp_path, pbx, module, phones, board=str(profile),
                       env={"ALSA_CONFIG_PATH": str(conf)})
    register_up_to(phone, module, 4)
    first: Baresip = make_baresip("1002", tone_hz=1000)
    second: Baresip = make_baresip("1004", tone_hz=700)
    first.dial(first.uri_of("1001"))  # line 1: handsets 1-3 ring
    wait_until(lambda: module.handset(2)["ringing"], 10, 0.05, "handset 2 ringing")
    module.do(2, "offhook")
    first.wait_event("CALL_ESTABLISHED", 10)
    second.dial(second.uri_of("1003"))  # line 2: handset 4
    wait_until(lambda: module.handset(4)["ringing"], 10, 0.05, "handset 4 ringing")
    module.do(4, "offhook")
    second.wait_event("CALL_ESTABLISHED", 10)
    wait_until(lambda: (module.handset(2)["audio_channel"],
                        module.handset(4)["audio_channel"]) == (0, 1), 5, 0.05,
               "voice channels 0 and 1 for handsets 2 and 4")
    voice = command(phone, "dect")["data"]["dect"]["voice"]
    assert voice["channels"] == [0, 1] and voice["connected"] == {"2": 0, "4": 1}
    for channel in tones:
        out = tmp_path / f"channel{channel}.out.wav"
        wait_until(lambda out=out: out.exists() and out.stat().st_size > 44 + 3 * rate * 2, 20,
                   0.05, f"3 s of a call out of voice channel {channel}")
    module.do(2, "onhook")
    module.do(4, "onhook")
    first.wait_event("CALL_CLOSED", 10)
    second.wait_event("CALL_CLOSED", 10)
    wait_until(lambda: command(phone, "dect")["data"]["dect"]["voice"]["connected"] == {}, 10,
               0.05, "both channels let go")
    phones.remove(phone)
    phone.stop()  # the channels' WAV headers are written when their devices close

    # within 15 Hz: the ALSA bridges' drift correction bends a tone by up to 1 % while it
    # catches up on a busy machine (the tones of the two calls are far further apart)
    for channel, far_tone in ((0, 1000), (1, 700)):
        assert abs(dominant_frequency(tmp_path / f"channel{channel}.out.wav", 0.5)
                   - far_tone) < 15, f"the far end's tone did not come out of channel {channel}"
    for caller, tone in ((first, 1500), (second, 500)):
        heard = caller.wait_audio_files(1, 10)[0]
        assert abs(dominant_frequency(heard, 0.5) - tone) < 15, \
            f"{caller} did not hear its handset's voice channel"
    assert not list((phone.data_dir / "audio").rglob("earpiece-*.wav")), \
        "a handset's call went to the simulator's recording instead of its channel"
