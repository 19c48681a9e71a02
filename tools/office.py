"""The simulated office: a local PBX, two desk phones and a DECT base, started with one command.

`luren office` runs, all on 127.0.0.1:

- Kamailio on a free port with the users 1001 (Anna Andersson), 1002 (Bertil Berg) and 1003
  (Kontoret, the DECT base), each with a password made up for this run;
- phone 1001, whose microphone is a 700 Hz tone, driven by a person through the front panel;
- phone 1002, whose microphone is a Swedish sentence spoken by espeak-ng, and a robot that lifts
  its handset after `answer_after_rings` rings and puts it back when the call has ended;
- the simulated DECT radio module (`python -m board.dect.sim`, tools/dect_module.py) with the
  handsets Reception, Lager and Verkstad already in its EEPROM file, and the DECT base 1003
  (`luren run --board sim-dect-base`) on the module's pty: the three handsets ring together for
  1003. A person (or a test) drives the handsets through the module's control socket.

Where everything is goes to `<office dir>/office.json` (written atomically once every phone is
registered and the base has its handsets, removed at exit); see docs/office.md for its format.
Ctrl-C or SIGTERM stops the robot, the base, the module, both phones and Kamailio, by PID; so
does a failed start, after printing why.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware.storage import atomic_write_json
from firmware.texts import text
from tools.dect_module import DectModule, Handset
from tools.office_provisioning import OfficeSite
from tools.pbx.kamailio import Kamailio, KamailioError
from tools.pbx.ports import free_port
from tools.pbx.process import log_tail
from tools.pbx.waiting import wait_until
from tools.phoneproc import ApiError, PhoneClient, PhoneProcess, phone_config

log = logging.getLogger("luren.office")

OFFICE_FILE = "office.json"
OFFICE_FILE_VERSION = 1
LANGUAGE = "sv"
ANNA = ("1001", "Anna Andersson")
BERTIL = ("1002", "Bertil Berg")
BASE = ("1003", "Kontoret")
MACS = {"1001": "02:00:00:00:10:01", "1002": "02:00:00:00:10:02",
        "1003": "02:00:00:00:10:03"}
BASE_MODEL = "dect-base"
DECT_PIN = "2580"  # the system PIN; the default 0000 would keep the registration window shut
HANDSETS = (Handset(1, "00c0ffee01", "Reception"), Handset(2, "00c0ffee02", "Lager"),
            Handset(3, "00c0ffee03", "Verkstad"))
DECT_EXAMPLE = '{"handset": 1, "do": "offhook"}'
ANNA_TONE_HZ = 700
FALLBACK_TONE_HZ = 1000
VOICE_TEXT = "Hej, det här är Bertil på anknytning 1002."
VOICE_FILE = "media/bertil-sv.wav"
REGISTER_TIMEOUT_S = 20.0
HANDSETS_TIMEOUT_S = 10.0  # the radio link's handshake and the handset list
ROBOT_POLL_S = 0.1  # the robot's status poll: 10 Hz at most
ROBOT_ERROR_BACKOFF_S = 1.0
SUPERVISE_S = 0.5
_ACTIVE_CALL_ROW = re.compile(
    "^(" + "|".join(re.escape(text("connected", lang)) for lang in ("sv", "en"))
    + r") +\d+:\d\d(:\d\d)?$")


class OfficeError(RuntimeError):
    """The office could not start; the message says what failed and shows the log tail."""


class _Terminate(Exception):
    """SIGTERM arrived: stop like Ctrl-C."""


# -- the microphone of 1002 ----------------------------------------------------------------------
def make_voice(path: Path, sentence: str = VOICE_TEXT) -> Path | None:
    """Speak `sentence` with espeak-ng (Swedish) into a 16 kHz mono 16-bit WAV at `path`.

    Returns `path`, or None (with a warning logged) when espeak-ng is missing or fails.
    """
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        log.warning("espeak-ng is not installed: phone 1002 speaks a %d Hz tone instead",
                    FALLBACK_TONE_HZ)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_name(path.stem + "-espeak.wav")
    try:
        _check_call([espeak, "-v", "sv", "-w", str(raw), sentence])
        _to_16k_mono(raw, path)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("espeak-ng could not make the voice (%s): phone 1002 speaks a %d Hz tone "
                    "instead", exc, FALLBACK_TONE_HZ)
        return None
    return path


def _to_16k_mono(raw: Path, path: Path) -> None:
    """Resample with sox (and add a second of silence so the loop has a pause)."""
    sox = shutil.which("sox")
    if sox is None:
        log.warning("sox is not installed: using espeak-ng's WAV as it is")
        raw.replace(path)
        return
    _check_call([sox, str(raw), "-r", "16000", "-c", "1", "-b", "16", str(path), "pad", "0", "1"])
    raw.unlink()


def _check_call(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise subprocess.SubprocessError(
            f"{Path(argv[0]).name} exited with {result.returncode}: {result.stderr.strip()}")


# -- the robot that answers 1002 -------------------------------------------------------------------
def shows_active_call(rows: list[str]) -> bool:
    """Whether a screen shows a connected call (its "Samtal  00:12" row)."""
    return any(_ACTIVE_CALL_ROW.match(row.strip()) for row in rows)


def robot_action(status: dict[str, Any], rows: list[str], answer_after_rings: int,
                 answered: bool) -> str | None:
    """What the answering robot does now: "answer", "hang_up" or None.

    It answers (lifts the handset) once an on-hook phone has rung `answer_after_rings` times
    (0 = never), and hangs up a handset it lifted once no SIP call is left and the screen no
    longer shows one.
    """
    terminal = status["terminals"][0]
    if terminal["hook"] == "onhook":
        ring_enough = terminal["ringing"] and terminal["rings"] >= answer_after_rings
        return "answer" if answer_after_rings > 0 and ring_enough else None
    if answered and not status["calls"] and not shows_active_call(rows):
        return "hang_up"
    return None


class AnsweringRobot:
    """Answers a phone after N rings and hangs up after the call, in a thread of its own."""

    def __init__(self, client: PhoneClient, answer_after_rings: int) -> None:
        self.client = client
        self.answer_after_rings = answer_after_rings
        self.answered = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="answering-robot", daemon=True)
        self._failing = False

    def start(self) -> AnsweringRobot:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)

    def _run(self) -> None:
        pause = ROBOT_POLL_S
        while not self._stop.wait(pause):
            try:
                self.step()
                pause, self._failing = ROBOT_POLL_S, False
            except (ApiError, OSError, ValueError, KeyError, IndexError) as exc:
                if not self._failing:
                    log.warning("answering robot: %s %s (retrying)", self.client.base_url, exc)
                pause, self._failing = ROBOT_ERROR_BACKOFF_S, True

    def step(self) -> None:
        """One look at the phone and at most one action."""
        status = self.client.request("GET", "/api/v1/status", timeout=5)
        offhook = status["terminals"][0]["hook"] == "offhook"
        if not offhook:
            self.answered = False
        rows = self.client.screen() if offhook and self.answered else []
        action = robot_action(status, rows, self.answer_after_rings, self.answered)
        if action == "answer":
            log.info("answering robot: lifting the handset of %s", self.client.base_url)
            self.client.hook(True)
            self.answered = True
        elif action == "hang_up":
            log.info("answering robot: the call ended, putting the handset back")
            self.client.hook(False)
            self.answered = False


# -- the office ----------------------------------------------------------------------------------
@dataclass
class OfficePhone:
    user: str
    name: str
    process: PhoneProcess
    mic: str  # what its microphone plays, for people

    @property
    def workdir(self) -> Path:
        return self.process.workdir


class Office:
    """The PBX, the two phones, the robot and the DECT base, under one directory."""

    def __init__(self, root: Path, answer_after_rings: int = 2) -> None:
        self.root = Path(root).resolve()
        self.answer_after_rings = answer_after_rings
        self.passwords = {user: secrets.token_urlsafe(12) for user, _ in (ANNA, BERTIL, BASE)}
        self.pbx: Kamailio | None = None
        self.site: OfficeSite | None = None
        self.phones: list[OfficePhone] = []
        self.robot: AnsweringRobot | None = None
        self.module: DectModule | None = None
        self.base: PhoneProcess | None = None

    @property
    def info_path(self) -> Path:
        return self.root / OFFICE_FILE

    def phone(self, user: str) -> OfficePhone:
        return next(p for p in self.phones if p.user == user)

    # -- start ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start everything and wait until every phone and the base are registered and the
        base has its handsets; OfficeError if not.

        On failure, what did start is left running: call `stop()` (always, in a finally).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self.info_path.unlink(missing_ok=True)
        self._start_pbx()
        self._start_site()
        voice = make_voice(self.root / VOICE_FILE)
        self._add_phone(ANNA, f"{ANNA_TONE_HZ} Hz tone", mic_tone_hz=ANNA_TONE_HZ)
        if voice is not None:
            self._add_phone(BERTIL, f"Swedish voice ({voice})", mic_file=str(voice))
        else:
            self._add_phone(BERTIL, f"{FALLBACK_TONE_HZ} Hz tone", mic_tone_hz=FALLBACK_TONE_HZ)
        self._start_module()
        self._add_base()
        self._start_processes()
        for phone in self.phones:
            self._wait_registered(f"phone {phone.user}", phone.process)
        self._wait_base_ready()
        self.robot = AnsweringRobot(PhoneClient(self.phone(BERTIL[0]).process.base_url),
                                    self.answer_after_rings).start()
        atomic_write_json(self.info_path, self.describe())

    def _start_pbx(self) -> None:
        try:
            self.pbx = Kamailio(self.root / "pbx", self.passwords, port=free_port())
        except ValueError as exc:  # e.g. a data dir too long for Kamailio's control socket
            raise OfficeError(f"cannot set up Kamailio: {exc}") from None
        try:
            self.pbx.start()
        except (KamailioError, OSError) as exc:
            raise OfficeError(f"Kamailio did not start: {exc}") from None
        log.info("Kamailio listening on %s", self.pbx.address)

    def _start_site(self) -> None:
        """The provisioning site: the phones' lines come from it, zero touch."""
        assert self.pbx is not None
        try:
            self.site = OfficeSite(self.root / "provisioning", self.pbx.address)
            for user, name in (ANNA, BERTIL):
                self.site.enrol(MACS[user], name, user, self.passwords[user],
                                self.root / f"phone-{user}" / "data")
            user, name = BASE
            self.site.enrol(MACS[user], name, user, self.passwords[user],
                            self.root / "dect-base" / "data", model=BASE_MODEL)
            self.site.start()
        except (OSError, RuntimeError, ValueError) as exc:
            raise OfficeError(f"the provisioning site did not start: {exc}") from None

    def _add_phone(self, who: tuple[str, str], mic: str, **sim: Any) -> None:
        """A desk phone, not started yet (`_start_processes`)."""
        assert self.site is not None
        user, name = who
        config = phone_config([], language=LANGUAGE, voicemail=True,
                              extra=self.site.bootstrap(MACS[user]), **sim)
        process = PhoneProcess(self.root / f"phone-{user}", config)
        self.phones.append(OfficePhone(user, name, process, mic))

    def _add_base(self) -> None:
        """The DECT base on the module's pty, not started yet (`_start_processes`)."""
        assert self.site is not None and self.module is not None
        config = base_config(self.site.bootstrap(MACS[BASE[0]]), self.module.pty)
        self.base = PhoneProcess(self.root / "dect-base", config, board="sim-dect-base")

    def _luren_processes(self) -> list[tuple[str, PhoneProcess]]:
        """Every `luren run` of the office, with what to call it in messages."""
        named = [(f"phone {phone.user}", phone.process) for phone in self.phones]
        if self.base is not None:
            named.append((f"the DECT base {BASE[0]}", self.base))
        return named

    def _start_processes(self) -> None:
        """Start the phones and the base side by side; OfficeError naming each that failed."""
        named = self._luren_processes()
        with ThreadPoolExecutor(max_workers=len(named)) as pool:
            problems = [p for p in pool.map(lambda item: _start_process(*item), named) if p]
        if problems:
            raise OfficeError("\n".join(problems))

    def _start_module(self) -> None:
        """The radio module, the three handsets put in its EEPROM file first."""
        self.module = DectModule(self.root / "dect")
        try:
            self.module.preregister(list(HANDSETS))
            self.module.start()
        except (ValueError, RuntimeError, TimeoutError, OSError) as exc:
            raise OfficeError(f"the simulated DECT module did not start: {exc}\n"
                              f"--- {self.module.process.log_path} (tail) ---\n"
                              f"{self.module.process.log_tail()}") from None
        log.info("simulated DECT module on %s, control socket %s", self.module.pty,
                 self.module.control)

    def _wait_registered(self, who: str, process: PhoneProcess) -> None:
        assert self.pbx is not None
        try:
            process.wait_status(lambda s: all(line["registered"] for line in s["lines"]),
                                REGISTER_TIMEOUT_S, f"{who} to register")
        except (TimeoutError, ApiError, OSError) as exc:
            raise OfficeError(f"{who} did not register with Kamailio: {exc}\n"
                              f"--- {process.process.log_path} (tail) ---\n"
                              f"{process.log_tail()}\n"
                              f"--- {self.pbx.log_path} (tail) ---\n"
                              f"{log_tail(self.pbx.log_path, 20)}") from None

    def _wait_base_ready(self) -> None:
        """The base registered, its radio link up and all three handsets known to it."""
        base, module = self.base, self.module
        assert base is not None and module is not None
        self._wait_registered(f"the DECT base {BASE[0]}", base)
        try:
            wait_until(lambda: base_has_handsets(dect_status(base)), HANDSETS_TIMEOUT_S,
                       0.05, "the DECT base to have its handsets")
        except (TimeoutError, ApiError, OSError, KeyError, ValueError) as exc:
            raise OfficeError(f"the DECT base {BASE[0]} did not get its handsets: {exc}\n"
                              f"--- {base.process.log_path} (tail) ---\n"
                              f"{base.log_tail()}\n"
                              f"--- {module.process.log_path} (tail) ---\n"
                              f"{module.process.log_tail()}") from None

    # -- while running -------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The content of office.json (docs/office.md)."""
        assert self.pbx is not None
        return {
            "version": OFFICE_FILE_VERSION,
            "pid": os.getpid(),
            "dir": str(self.root),
            "log": str(self.root / "office.log"),
            "answer_after_rings": self.answer_after_rings,
            "pbx": {"host": "127.0.0.1", "port": self.pbx.port, "pids": self.pbx.pids(),
                    "log": str(self.pbx.log_path)},
            "provisioning": self.site.describe() if self.site is not None else {},
            "phones": {phone.user: self._describe_phone(phone) for phone in self.phones},
            "dect": self._describe_dect(),
        }

    @staticmethod
    def _describe_phone(phone: OfficePhone) -> dict[str, Any]:
        process = phone.process
        return {"name": phone.name, **_describe_process(process),
                "recordings": str(process.data_dir / "audio"), "mic": phone.mic}

    def _describe_dect(self) -> dict[str, Any]:
        if self.base is None or self.module is None:
            return {}
        module = self.module
        return {"user": BASE[0], "name": BASE[1], "pin": DECT_PIN,
                "base": _describe_process(self.base),
                "module": {"pid": module.pid, "pty": module.pty, "control": str(module.control),
                           "eeprom": str(module.state), "log": str(module.process.log_path)},
                "handsets": [{"number": h.number, "name": h.name, "ipui": h.ipui, "line": 1}
                             for h in HANDSETS]}

    def failure(self) -> str | None:
        """What has died unexpectedly, with its log tail; None while all is well."""
        if self.pbx is not None and self.pbx.pid is None:
            return (f"Kamailio exited; {self.pbx.log_path} (tail):\n"
                    f"{log_tail(self.pbx.log_path, 20)}")
        for phone in self.phones:
            if not phone.process.process.running():
                return (f"phone {phone.user} exited with {phone.process.process.returncode()}; "
                        f"{phone.process.process.log_path} (tail):\n{phone.process.log_tail()}")
        if self.module is not None and not self.module.running():
            return (f"the simulated DECT module exited with "
                    f"{self.module.process.returncode()}; {self.module.process.log_path} "
                    f"(tail):\n{self.module.process.log_tail()}")
        if self.base is not None and not self.base.process.running():
            return (f"the DECT base exited with {self.base.process.returncode()}; "
                    f"{self.base.process.log_path} (tail):\n{self.base.log_tail()}")
        return None

    # -- stop ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the robot, the phones and the base (side by side), the radio module, the
        provisioning site and Kamailio (by PID, process groups); idempotent."""
        if self.robot is not None:
            self.robot.stop()
            self.robot = None
        processes = [process for _, process in self._luren_processes()]
        if processes:  # side by side: each takes a second to unregister and end pjsip
            with ThreadPoolExecutor(max_workers=len(processes)) as pool:
                list(pool.map(lambda process: process.stop(), processes))
        if self.module is not None:
            self.module.stop()
        if self.site is not None:
            self.site.stop()
            self.site = None
        if self.pbx is not None:
            self.pbx.stop()
        self.info_path.unlink(missing_ok=True)


def _start_process(who: str, process: PhoneProcess) -> str | None:
    """Start one `luren run` and wait until it is ready; what went wrong, or None."""
    try:
        process.start()
    except (RuntimeError, TimeoutError, OSError) as exc:
        return (f"{who} did not start: {exc}\n--- {process.process.log_path} (tail) ---\n"
                f"{process.log_tail()}")
    log.info("%s started: control API on %s", who, process.base_url)
    return None


def base_config(bootstrap: str, port: str) -> str:
    """The DECT base's own config: its radio's pty, the system PIN, the three handsets on its
    line (group ringing), a console on a pty and where to fetch its line (`bootstrap`)."""
    handsets = "".join(f'[[handsets]]\nnumber = {h.number}\nline = 1\nname = "{h.name}"\n'
                       for h in HANDSETS)
    dect = (f'[console]\nport = "pty"\n'
            f'[dect]\nport = {json.dumps(port)}\npin = "{DECT_PIN}"\n{handsets}')
    return phone_config([], language=LANGUAGE, extra=dect + bootstrap)


def dect_status(base: PhoneClient) -> dict[str, Any]:
    """The base's `dect` command (radio link, window, handsets) through its control API."""
    answer = base.request("POST", "/api/v1/command", {"command": "dect"}, timeout=5)
    return answer["data"]["dect"] if answer.get("ok") else {}


def base_has_handsets(status: dict[str, Any]) -> bool:
    """Whether the base's radio link is up and it knows every handset of the office."""
    if not status or not status["link"]["up"]:
        return False
    return sorted(h["number"] for h in status["handsets"]) == [h.number for h in HANDSETS]


def _describe_process(process: PhoneProcess) -> dict[str, Any]:
    return {"api": process.base_url, "sip_port": process.sip_port, "pid": process.pid,
            "workdir": str(process.workdir), "data_dir": str(process.data_dir),
            "config": str(process.config_path), "log": str(process.process.log_path),
            "console": _console_of(process.data_dir)}


def _console_of(data_dir: Path) -> str:
    """The phone's serial console (its pty), from its ready file ("" when none)."""
    try:
        return str(json.loads((data_dir / "run" / "ready.json").read_text()).get("console", ""))
    except (OSError, ValueError):
        return ""


# -- the command ---------------------------------------------------------------------------------
def banner(office: Office, temporary: bool, panel: bool) -> str:
    """What a person needs to know to use the office, and where its files are."""
    info = office.describe()
    kept = "removed at exit" if temporary else "kept at exit"
    lines = [f"Luren simulated office in {office.root} ({kept})",
             f"  PBX   Kamailio on 127.0.0.1:{info['pbx']['port']}  log {info['pbx']['log']}"]
    for phone in office.phones:
        about = info["phones"][phone.user]
        lines += [f"  {phone.user}  {phone.name:<15} API {about['api']}  mic: {phone.mic}",
                  f"        log {about['log']}",
                  f"        console (screen {about['console']} 115200; the one-time code is "
                  "under Settings, Info)" if about["console"] else "        no console",
                  f"        recordings {about['recordings']}/earpiece-*.wav"]
    lines += _dect_banner(info["dect"])
    rings = office.answer_after_rings
    lines += [f"  1002 answers after {rings} ring(s)." if rings else "  1002 never answers.",
              f"  Where everything is: {office.info_path}",
              f"  A front panel for any phone: {sys.executable} -m tools.frontpanel <API URL>"]
    if panel:
        lines.append("The front panel of 1001 follows: Space lifts the handset, dial 1002, "
                     "Space again hangs up; q quits the office.")
    else:
        lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


def _dect_banner(dect: dict[str, Any]) -> list[str]:
    """The base's lines of the banner: its API, console, handsets and how to drive one."""
    if not dect:
        return []
    base, module = dect["base"], dect["module"]
    names = ", ".join(f"{h['number']} {h['name']}" for h in dect["handsets"])
    return [f"  {dect['user']}  {dect['name']:<15} API {base['api']}  DECT base, PIN "
            f"{dect['pin']}",
            f"        log {base['log']}",
            f"        console (screen {base['console']} 115200; the one-time code is on any "
            "handset: key menu, Info)" if base["console"] else "        no console",
            f"        handsets {names}: all ring for {dect['user']}",
            f"        radio module: control socket {module['control']}  log {module['log']}",
            f"        a handset: {sys.executable} -m tools.dect_module {module['control']} "
            f"'{DECT_EXAMPLE}'",
            '        (also "onhook", "state", "dial" with "digits", "key" with "key"; '
            '{"do": "list"} for all)']


def run_office(data_dir: Path | None, answer_after_rings: int, panel: bool) -> int:
    """Run the simulated office until Ctrl-C/SIGTERM (or `q` in the panel); returns 0.

    `data_dir=None` uses a temporary folder removed at exit; a given one is kept, with its
    logs and recordings. Returns 1 when the office cannot start or a part of it dies.
    """
    if answer_after_rings < 0:
        print("luren office: --answer-after-rings must be 0 or more", file=sys.stderr)
        return 2
    temporary = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="luren-office-")) if data_dir is None else data_dir
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"luren office: cannot use {root} for the office's files: {exc}", file=sys.stderr)
        return 2
    office = Office(root, answer_after_rings)
    previous = _stop_on_signals()
    try:
        with _office_logging(office.root / "office.log", console=not panel):
            return _run(office, temporary, panel)
    except (KeyboardInterrupt, _Terminate):
        return 0
    finally:
        _stop_quietly(office)
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(office: Office, temporary: bool, panel: bool) -> int:
    print("luren office: starting Kamailio, phones 1001 and 1002 and the DECT base 1003 ...",
          flush=True)
    try:
        office.start()
    except (OfficeError, OSError) as exc:
        print(f"luren office: could not start the office: {exc}", file=sys.stderr)
        return 1
    print(banner(office, temporary, panel), flush=True)
    if panel:
        from tools.frontpanel import run_panel  # curses only when there is a panel

        anna = office.phone(ANNA[0])
        run_panel(PhoneClient(anna.process.base_url), f"{anna.user} {anna.name}")
        return 0
    return _supervise(office)


def _supervise(office: Office) -> int:
    """Wait for Ctrl-C/SIGTERM; return 1 if a part of the office dies meanwhile."""
    while True:
        problem = office.failure()
        if problem is not None:
            print(f"luren office: {problem}", file=sys.stderr)
            return 1
        time.sleep(SUPERVISE_S)


def _stop_quietly(office: Office) -> None:
    """Stop everything; a second Ctrl-C or SIGTERM must not leave processes behind."""
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        print("luren office: stopping ...", flush=True)
        office.stop()
        print("luren office: stopped", flush=True)
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def _stop_on_signals() -> dict[int, Any]:
    """SIGTERM stops the office like Ctrl-C; SIGINT works even if the shell ignored it."""
    def on_term(signum: int, frame: object) -> None:
        raise _Terminate()
    return {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
            signal.SIGTERM: signal.signal(signal.SIGTERM, on_term)}


@contextlib.contextmanager
def _office_logging(path: Path, console: bool) -> Iterator[None]:
    """Log to `path` too; with `console=False` (the panel owns the terminal) only there."""
    root = logging.getLogger()
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    hidden = [] if console else [h for h in root.handlers if type(h) is logging.StreamHandler]
    for handler in hidden:
        root.removeHandler(handler)
    root.addHandler(to_file)
    try:
        yield
    finally:
        root.removeHandler(to_file)
        to_file.close()
        for handler in hidden:
            root.addHandler(handler)
