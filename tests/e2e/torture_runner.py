"""Replay the RFC 4475/5118 torture messages at a live phone, inside a private network
namespace (run as `unshare -n`), and print what the phone answered as JSON.

The namespace has only its own loopback: whatever address a torture message names, nothing
can leave the machine. Run by tests/e2e/test_sip_torture.py:

    unshare -n sh -c 'ip link set lo up && python -m tests.e2e.torture_runner DIR WORK'
"""

from __future__ import annotations

import csv
import json
import re
import socket
import sys
from pathlib import Path

from tools.pbx.kamailio import Kamailio
from tools.phoneproc import LineSpec, PhoneProcess, phone_config

PBX_PORT = 25060
USER, PASSWORD = "1001", "torture-1001"
_REQUEST_LINE = re.compile(rb"^([!-~]+ )(sips?:)((?:[^@\s]*@)?)([^;?>\s]+)")
_VIA_PORT = re.compile(rb"^(?:Via|v)\s*:\s*SIP\s*/\s*2\.0\s*/\s*UDP\s+[^\s;:]+(?::(\d+))?",
                       re.IGNORECASE | re.MULTILINE)


def manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.tsv", newline="", encoding="utf-8") as fh:
        rows = [line for line in fh if line.strip()]
    header = rows[0].lstrip("# ").rstrip("\n").split("\t")
    return list(csv.DictReader(rows[1:], fieldnames=header, delimiter="\t"))


def retarget(message: bytes, port: int, flags: set[str]) -> bytes:
    """Point the Request-URI at the phone (unless keep_ruri); fix Content-Length if asked."""
    if "keep_ruri" not in flags:
        message = _REQUEST_LINE.sub(rb"\1\2\g<3>127.0.0.1:" + str(port).encode(), message, 1)
    if "fix_cl" in flags:
        head, sep, body = message.partition(b"\r\n\r\n")
        head = re.sub(rb"(?im)^(Content-Length|l)\s*:\s*\d+", lambda m: m.group(1) + b": "
                      + str(len(body)).encode(), head, count=1)
        message = head + sep + body
    return message


def call_id(message: bytes) -> bytes:
    m = re.search(rb"(?im)^(?:Call-ID|i)\s*:\s*(\S+)", message)
    return m.group(1) if m else b""


def exchange(message: bytes, phone_port: int) -> str | None:
    """Send from the port the top Via names (responses go there); the phone's answer to this
    message: its final status line, else its last provisional one, else None."""
    via = _VIA_PORT.search(message)
    port = int(via.group(1)) if via and via.group(1) else 5060
    wanted, answer = call_id(message), None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.6)
        sock.sendto(message, ("127.0.0.1", phone_port))
        try:
            while True:
                data = sock.recv(65535)
                if wanted and call_id(data) != wanted:
                    continue  # a late answer to an earlier message
                answer = data.split(b"\r\n", 1)[0].decode("latin-1")
                if not answer.startswith("SIP/2.0 1"):
                    return answer
        except TimeoutError:
            return answer


def settle(phone: PhoneProcess) -> None:
    """Reject any call a message started, so the next one finds the phone idle."""
    if phone.status()["calls"]:
        phone.key("cancel")
        phone.wait_status(lambda s: not s["calls"], 10, "the call to end")


def options_ok(phone_port: int) -> bool:
    request = (f"OPTIONS sip:{USER}@127.0.0.1:{phone_port} SIP/2.0\r\n"
               "Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bKalive\r\n"
               "Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=a\r\n"
               f"To: <sip:{USER}@127.0.0.1>\r\nCall-ID: alive@t\r\nCSeq: 1 OPTIONS\r\n"
               "Content-Length: 0\r\n\r\n").encode()
    return (exchange(request, phone_port) or "").startswith("SIP/2.0 200")


def main(data_dir: Path, work: Path) -> None:
    with Kamailio(work / "pbx", {USER: PASSWORD}, port=PBX_PORT):
        line = LineSpec(USER, PASSWORD, f"127.0.0.1:{PBX_PORT}", "Torture")
        phone = PhoneProcess(work / "phone", phone_config([line]))
        try:
            phone.start()
            phone.wait_status(lambda s: s["lines"][0]["registered"], 10, "registration")
            results = []
            for row in manifest(data_dir):
                flags = set(filter(None, row["flags"].split(",")))
                message = retarget((data_dir / row["file"]).read_bytes(), phone.sip_port, flags)
                results.append({"file": row["file"], "class": row["class"],
                                "expected": row["expected_ua_behaviour"],
                                "got": exchange(message, phone.sip_port)})
                settle(phone)
            status = phone.status()
            print(json.dumps({
                "results": results,
                "alive": phone.process.running(),
                "registered": status["lines"][0]["registered"],
                "options_ok": options_ok(phone.sip_port),
            }))
        finally:
            phone.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
