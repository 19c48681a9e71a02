"""Benchmark: nginx serving a rendered provisioning tree to a fleet, next to the lab server.

    .venv/bin/python -m tools.bench.nginx_bench [--phones 10000] [--duration 10] \\
        [--connections 64] [--threads 2] [--workers 2]

Renders a signed tree for `--phones` phones (each MAC file encrypted for its phone, as
tools/bench/provisioning_bench.py does), serves it over HTTPS with a lab CA from a private nginx
(tests/harness/nginx.py, `--workers` worker processes) and loads it with wrk: a Lua script
cycles through every phone's three files (common.toml, <model>.toml, <mac>.toml), the fleet's
resync pattern. Three passes of `--duration` seconds each:

- full GETs (200, whole bodies);
- GETs with If-None-Match carrying each file's ETag (304): the steady state of a resync;
- the same 304s, with a new TLS connection per phone (`Connection: close` on its third file),
  as a phone opens one connection per run. wrk may resume the TLS session; a phone does not.

Then the same three passes against the lab Python server (provisioning.server.https) on the
same tree. Prints requests/s, latency p50/p99, transfer/s, non-2xx/3xx answers and socket
errors per pass, and nginx's worker count. wrk, nginx and this process share the machine's
CPUs. wrk does not verify the certificate. Figures only: no thresholds, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from provisioning.server.https import HttpsServer, make_ca
from provisioning.server.inventory import Inventory
from provisioning.server.render import render_tree
from provisioning.signing import (
    device_public_key_from_text,
    encrypt_for_device,
    generate_device_key,
    generate_key,
    load_private_key,
    sign,
)
from tests.harness.nginx import Nginx
from tools.bench.provisioning_bench import raw_b64
from tools.pbx.waiting import wait_until

MODEL = "sim"
PASSES = (("full", "full GET (200)"), ("etag", "If-None-Match (304)"),
          ("etag-close", "304, a TLS connection per phone"))

# wrk script: args = plan file, mode (full | etag | etag-close), wrk thread count.
# Each plan line is "<path>\t<etag>", phone by phone; every request string is built once.
WRK_SCRIPT = """\
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local requests, count, i = {}, 0, 0

function init(args)
  local plan, mode, threads = args[1], args[2], tonumber(args[3])
  for line in io.lines(plan) do
    local path, etag = line:match("^(%S+)\\t(.*)$")
    count = count + 1
    local headers = {}
    if mode ~= "full" then headers["If-None-Match"] = etag end
    if mode == "etag-close" and count % 3 == 0 then headers["Connection"] = "close" end
    requests[count] = wrk.format("GET", path, headers)
  end
  i = id * 3 * math.floor(count / 3 / threads)  -- each thread starts at its own phone
end

function request()
  i = i % count + 1
  return requests[i]
end
"""


@dataclass(frozen=True)
class Fleet:
    """A rendered tree and what serves it: the lab CA and the server certificate."""

    tree: Path
    ca_cert: Path
    cert: Path
    key: Path
    macs: list[str]


@dataclass(frozen=True)
class WrkResult:
    """One wrk run's figures, as wrk printed them."""

    requests_per_s: str
    p50: str
    p99: str
    transfer_per_s: str
    non_2xx_3xx: int
    socket_errors: str
    requests: str


def render_fleet(root: Path, phones: int) -> Fleet:
    """An inventory of `phones` phones (one device key for all) rendered, signed, into a tree."""
    generate_key(root / "keys", "site")
    key_id, key = load_private_key(root / "keys" / "site.key")
    ca = make_ca(root / "ca")
    cert, cert_key = ca.issue(root / "ca", "prov")
    _, device_pub = generate_device_key(root / "device", "device")
    device_key = raw_b64(device_pub)
    with Inventory(root / "inventory.db") as inventory:
        inventory.set_common('[device]\nlanguage = "sv"\n')
        inventory.set_model_template(MODEL, '[device]\ntone_country = "se"\n')
        macs = [f"02{n:010x}" for n in range(phones)]
        for n, mac in enumerate(macs):
            inventory.add_device(mac, MODEL, name=f"Phone {n}", public_key=device_key)
            inventory.set_line(mac, 1, f"{10000 + n}", f"pw-{n}", display_name=f"Phone {n}",
                               registrar="pbx.example.se")
        begin = time.perf_counter()
        report = render_tree(
            inventory, root / "tree", signer=lambda body: sign(body, key_id, key),
            encryptor=lambda body, text: encrypt_for_device(
                body, device_public_key_from_text(text)))
        assert report.ok, report.errors
    print(f"rendered {phones} phones (signed, MAC files encrypted) in "
          f"{time.perf_counter() - begin:.1f} s")
    return Fleet(root / "tree", ca.cert_path, cert, cert_key, macs)


def fleet_paths(fleet: Fleet) -> list[str]:
    """Every phone's three files, phone by phone: the order a resyncing fleet asks for them."""
    return [path for mac in fleet.macs
            for path in ("/common.toml", f"/{MODEL}.toml", f"/{mac}.toml")]


def nginx_etag(file: Path) -> str:
    """nginx's ETag for a static file: mtime (whole seconds) and size, in hex."""
    stat = file.stat()
    return f'"{int(stat.st_mtime):x}-{stat.st_size:x}"'


def lab_etag(file: Path) -> str:
    """The lab server's ETag: the SHA-256 of the body."""
    return f'"{hashlib.sha256(file.read_bytes()).hexdigest()}"'


def write_plan(path: Path, fleet: Fleet, etag: Callable[[Path], str]) -> Path:
    """The wrk plan: one "<path>\\t<etag>" line per request of the fleet's resync."""
    tags: dict[str, str] = {}
    lines = []
    for url_path in fleet_paths(fleet):
        if url_path not in tags:
            tags[url_path] = etag(fleet.tree / url_path.lstrip("/"))
        lines.append(f"{url_path}\t{tags[url_path]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def check_etags(url: str, fleet: Fleet, etag: Callable[[Path], str]) -> None:
    """One MAC file answers 200 with the ETag the plan uses, and 304 when it is sent back."""
    name = f"{fleet.macs[-1]}.toml"
    with httpx.Client(verify=str(fleet.ca_cert)) as client:
        full = client.get(f"{url}{name}")
        again = client.get(f"{url}{name}", headers={"If-None-Match": full.headers["etag"]})
    expected = etag(fleet.tree / name)
    if (full.status_code, again.status_code, full.headers["etag"]) != (200, 304, expected):
        raise RuntimeError(f"{url}{name}: got {full.status_code} ETag {full.headers['etag']}, "
                           f"then {again.status_code}; the plan expects ETag {expected}")


def run_wrk(url: str, script: Path, plan: Path, mode: str, args: argparse.Namespace) -> WrkResult:
    """One wrk run of `args.duration` seconds; its figures."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not installed (apt-get install wrk)")
    done = subprocess.run(
        [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
         "-s", str(script), url, "--", str(plan), mode, str(args.threads)],
        capture_output=True, text=True, timeout=args.duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


def parse_wrk(text: str) -> WrkResult:
    """The figures of wrk's `--latency` report."""
    def find(pattern: str, default: str = "?") -> str:
        match = re.search(pattern, text, re.MULTILINE)
        return match.group(1).strip() if match else default

    return WrkResult(
        requests_per_s=find(r"^Requests/sec:\s+(\S+)"),
        p50=find(r"^\s+50%\s+(\S+)"),
        p99=find(r"^\s+99%\s+(\S+)"),
        transfer_per_s=find(r"^Transfer/sec:\s+(\S+)"),
        non_2xx_3xx=int(find(r"Non-2xx or 3xx responses:\s+(\d+)", "0")),
        socket_errors=find(r"Socket errors:\s+(.*)$", "none"),
        requests=find(r"^\s+(\d+ requests in [^,]+)"),
    )


def print_row(server: str, label: str, result: WrkResult) -> None:
    print(f"{server:<6} {label:<33} {result.requests_per_s:>11} {result.p50:>9} "
          f"{result.p99:>9} {result.transfer_per_s:>10} {result.non_2xx_3xx:>11}  "
          f"{result.requests}; socket errors: {result.socket_errors}")


def load(server: str, url: str, work: Path, fleet: Fleet, etag: Callable[[Path], str],
         args: argparse.Namespace) -> None:
    """Check the ETags, then run every pass against `url` and print a row each."""
    check_etags(url, fleet, etag)
    script = work / "fleet.lua"
    script.write_text(WRK_SCRIPT)
    plan = write_plan(work / f"plan-{server}.tsv", fleet, etag)
    for mode, label in PASSES:
        print_row(server, label, run_wrk(url, script, plan, mode, args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phones", type=int, default=10000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per pass")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="nginx worker processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="luren-nginx-bench-") as tmp:
        root = Path(tmp)
        fleet = render_fleet(root, args.phones)
        sizes = ", ".join(f"{name} {(fleet.tree / name).stat().st_size} B" for name in
                          ("common.toml", f"{MODEL}.toml", f"{fleet.macs[0]}.toml"))
        print(f"files: {sizes}; {args.phones * 3} requests per fleet resync")
        print(f"wrk: {args.threads} threads, {args.connections} connections, "
              f"{args.duration} s per pass; CPUs: {os.cpu_count()}")
        print(f"{'server':<6} {'pass':<33} {'requests/s':>11} {'p50':>9} {'p99':>9} "
              f"{'transfer/s':>10} {'non-2xx/3xx':>11}  requests")
        with Nginx(fleet.tree, fleet.cert, fleet.key, root / "nginx",
                   worker_processes=args.workers) as web:
            workers = wait_until(lambda: len(web.worker_pids()) == args.workers and
                                 web.worker_pids(), 5, what="nginx's workers")
            load("nginx", web.url("/"), root, fleet, nginx_etag, args)
        with HttpsServer(fleet.tree, fleet.cert, fleet.key) as lab:
            load("lab", lab.url("/"), root, fleet, lab_etag, args)
        print(f"nginx: {len(workers)} worker processes (pids {', '.join(map(str, workers))})")


if __name__ == "__main__":
    main()
