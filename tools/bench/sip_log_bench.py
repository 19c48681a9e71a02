"""Benchmark: what reading pjsip's log costs the SIP engine thread, against a whole call.

    .venv/bin/python -m tools.bench.sip_log_bench [--calls 100] [--rate 5]

The engine runs pjsip's log at level 4: it is where pjsua2 reports every SIP message received
with its transport and source, which check-sync, the stray-request answers and the console's
`sip trace` need (firmware/sip/check_sync.py). Every log entry then crosses into Python on the
engine thread (`_LogWriter.write`): the trace ring buffer, the check for a NOTIFY or REFER to
read, the logging level test. This measures that per entry, on entries shaped as pjsip writes
them for one answered call (the INVITE with its SDP, 100/180/200, ACK, BYE and its 200, and the
short state lines between), and sets it beside what a whole call costs:

- the phone (auto-answer) and baresip (auto-answer), both registered at a local Kamailio,
  each take `--calls` calls from SIPp (INVITE, 50 ms of call, BYE) at `--rate` per second,
  one at a time; each process's CPU time (user + system, /proc) over its calls, per call.

Figures only: no thresholds, not a test; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from tests.harness.baresip import Baresip
from tests.harness.sipp import run_uac_load
from tools.bench.call_cpu_bench import cpu_seconds
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port
from tools.phoneproc import LineSpec, PhoneProcess, phone_config

USERS = {"1001": "log-1001", "1002": "log-1002"}
SDP = ("v=0\r\no=- 3921393622 3921393622 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
       "t=0 0\r\nm=audio 6000 RTP/AVP 8 0 9 101\r\na=rtpmap:8 PCMA/8000\r\n"
       "a=rtpmap:0 PCMU/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
       "a=fmtp:101 0-16\r\na=sendrecv\r\n")


def _message(first: str, method: str, cseq: int, body: str = "") -> str:
    headers = [first, "Via: SIP/2.0/UDP 127.0.0.1:5060;rport=5060;branch=z9hG4bKsr-abc123",
               "Record-Route: <sip:127.0.0.1:5060;lr>", "From: <sip:sipp@127.0.0.1>;tag=1",
               "To: <sip:1001@127.0.0.1>;tag=pj-7", "Call-ID: 1-4242@127.0.0.1",
               f"CSeq: {cseq} {method}", "Contact: <sip:sipp@127.0.0.1:6000>",
               "Max-Forwards: 69", "User-Agent: SIPp", f"Content-Length: {len(body)}"]
    if body:
        headers.insert(-1, "Content-Type: application/sdp")
    return "\r\n".join(headers) + "\r\n\r\n" + body


def one_call_entries() -> list[SimpleNamespace]:
    """pjsip's level 1-4 log entries for one answered incoming call, in order."""
    messages = [
        ("RX", "Request msg INVITE/cseq=1", _message("INVITE sip:1001@127.0.0.1 SIP/2.0",
                                                     "INVITE", 1, SDP)),
        ("TX", "Response msg 100/INVITE/cseq=1", _message("SIP/2.0 100 Trying", "INVITE", 1)),
        ("TX", "Response msg 180/INVITE/cseq=1", _message("SIP/2.0 180 Ringing", "INVITE", 1)),
        ("TX", "Response msg 200/INVITE/cseq=1", _message("SIP/2.0 200 OK", "INVITE", 1, SDP)),
        ("RX", "Request msg ACK/cseq=1", _message("ACK sip:1001@127.0.0.1 SIP/2.0", "ACK", 1)),
        ("RX", "Request msg BYE/cseq=2", _message("BYE sip:1001@127.0.0.1 SIP/2.0", "BYE", 2)),
        ("TX", "Response msg 200/BYE/cseq=2", _message("SIP/2.0 200 OK", "BYE", 2)),
    ]
    entries = []
    for direction, what, text in messages:
        where = "from UDP 127.0.0.1:5060" if direction == "RX" else "to UDP 127.0.0.1:5060"
        msg = (f"{direction} {len(text)} bytes {what} (rdata0x55d0185970d8) {where}:\n{text}"
               "\n--end msg--")
        entries.append(SimpleNamespace(msg=msg, level=4))
    short = ["Incoming INVITE from <sip:sipp@127.0.0.1>", "Call 0: state changed to EARLY",
             "Call 0: state changed to CONNECTING", "Call 0: media updated",
             "Audio updated, stream #0: PCMA (sendrecv)", "Call 0: state changed to CONFIRMED",
             "Call 0: disconnected, reason=200 (Normal call clearing)",
             "Media session call00:0 is destroyed", "Call 0: state changed to DISCONNECTED",
             "Conference port 3 disconnected", "Stream destroyed", "Transaction destroyed"]
    return entries + [SimpleNamespace(msg=line, level=4) for line in short]


def log_writer_cost(rounds: int) -> tuple[float, int]:
    """(µs per entry, entries per call) of the engine's log writer on one call's entries."""
    from firmware.config import parse_config
    from firmware.sip.engine import SipEngine

    engine = SipEngine(parse_config({"provisioning": {"url": "https://127.0.0.1:9/"}}),
                       lambda event: None, Path(tempfile.gettempdir()))
    writer = engine._log_writer
    entries = one_call_entries()
    for entry in entries:  # warm up
        writer.write(entry)
    start = time.perf_counter()
    for _ in range(rounds):
        for entry in entries:
            writer.write(entry)
    elapsed = time.perf_counter() - start
    return elapsed / (rounds * len(entries)) * 1e6, len(entries)


def per_call_cpu(pid: int, target: str, calls: int, rate: float, workdir: Path) -> float:
    """CPU milliseconds process `pid` spends per call of a SIPp run at `target`."""
    before = cpu_seconds(pid)
    result = run_uac_load(target, calls=calls, rate=rate, concurrent_limit=1,
                          call_duration_ms=50, timeout=calls / rate + 30, workdir=workdir)
    spent = cpu_seconds(pid) - before
    done = max(result.successful, 1)
    if result.successful != calls:
        print(f"  ({target}: {result.successful} of {calls} calls succeeded)")
    return spent / done * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    per_entry_us, entries = log_writer_cost(args.rounds)
    with tempfile.TemporaryDirectory(prefix="luren-log-") as tmp, \
            Kamailio(Path(tmp) / "pbx", USERS, port=free_port(), capture=False) as pbx:
        line = LineSpec("1001", USERS["1001"], f"127.0.0.1:{pbx.port}", "Log", auto_answer=True)
        phone = PhoneProcess(Path(tmp) / "phone", phone_config([line])).start()
        try:
            with Baresip(Path(tmp) / "baresip", "1002", USERS["1002"], pbx.port,
                         auto_answer=True) as far:
                far.wait_registered(10)
                phone.wait_status(lambda s: s["lines"][0]["registered"], 10, "registered")
                assert phone.pid is not None and far.pid is not None
                luren = per_call_cpu(phone.pid, f"sip:1001@127.0.0.1:{pbx.port}", args.calls,
                                     args.rate, Path(tmp) / "sipp-luren")
                baresip = per_call_cpu(far.pid, f"sip:1002@127.0.0.1:{pbx.port}", args.calls,
                                       args.rate, Path(tmp) / "sipp-baresip")
        finally:
            phone.stop()
    per_call_us = per_entry_us * entries
    print(f"(load average {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end, "
          f"{os.cpu_count()} cores)")
    print(f"log writer (engine thread): {per_entry_us:.1f} µs per entry, {entries} entries per "
          f"call = {per_call_us / 1000:.3f} ms per call")
    print(f"a whole call ({args.calls} SIPp calls, 50 ms each, {args.rate:g}/s), CPU per call: "
          f"luren {luren:.1f} ms   baresip {baresip:.1f} ms   ratio {luren / baresip:.2f}")
    print(f"the log writer is {per_call_us / 1000 / luren * 100:.1f} % of luren's CPU per call")


if __name__ == "__main__":
    main()
