"""A private OpenLDAP server (slapd) on a free loopback port, for directory tests.

    with Slapd(tmp_path / "ldap", [{"dn": "cn=Åsa Öberg,ou=people,dc=example,dc=se",
                                    "objectClass": "inetOrgPerson", "cn": "Åsa Öberg",
                                    "sn": "Öberg", "telephoneNumber": "08-123 45 67"}]) as ldap:
        fetch_ldap(ldap.url, ldap.base, bind_dn=ldap.root_dn, password=ldap.root_pw)

The suffix `dc=example,dc=se` and `ou=people` under it are created; `entries` are added with
slapadd before the server starts. Everything it writes (slapd.conf, the mdb database, pid and
args files, log) stays in `workdir`; it listens on ldap://127.0.0.1:<port>/ only (no ldapi
socket), runs in the foreground (`-d 0`) and is stopped by PID. It never touches a system
slapd. Requires the Debian package `slapd` (binaries /usr/sbin/slapd and slapadd, schemas in
/etc/ldap/schema, back_mdb in /usr/lib/ldap).
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tools.pbx.ports import free_port
from tools.pbx.process import ManagedProcess, Peer
from tools.pbx.waiting import wait_until

BASE = "dc=example,dc=se"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PW = "secret"
SCHEMAS = ("core", "cosine", "inetorgperson")
START_TIMEOUT = 10.0

Entry = Mapping[str, str | Sequence[str]]


class SlapdError(RuntimeError):
    """slapd could not be set up or did not start."""


class Slapd(Peer):
    """One slapd serving `dc=example,dc=se` from an mdb database in `workdir`.

    `size_limit` is the server's size limit for a plain search (slapd's `sizelimit`); a paged
    search (pages of at most `size_limit`) may still read every entry, as on a typical
    Active Directory (MaxPageSize 1000), unless `paged_total` limits paged searches too.
    """

    def __init__(self, workdir: Path, entries: Sequence[Entry] = (), *,
                 port: int | None = None, size_limit: int = 500,
                 paged_total: int | None = None) -> None:
        self.workdir = workdir
        self.entries = list(entries)
        self.port = port or free_port()
        self.size_limit = size_limit
        self.paged_total = paged_total
        self.base = BASE
        self.root_dn = ROOT_DN
        self.root_pw = ROOT_PW
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def start(self) -> Slapd:
        slapd, slapadd = shutil.which("slapd", path="/usr/sbin:/usr/bin"), \
            shutil.which("slapadd", path="/usr/sbin:/usr/bin")
        if not slapd or not slapadd:
            raise SlapdError("slapd not installed (apt-get install slapd)")
        conf = self._write_config()
        ldif = self.workdir / "entries.ldif"
        ldif.write_text(to_ldif(self._all_entries()), encoding="utf-8")
        added = subprocess.run([slapadd, "-f", str(conf), "-n", "1", "-q", "-l", str(ldif)],
                               capture_output=True, text=True, timeout=30, check=False)
        if added.returncode != 0:
            raise SlapdError(f"slapadd failed:\n{added.stdout}{added.stderr}")
        self._proc = ManagedProcess(
            [slapd, "-f", str(conf), "-h", f"{self.url}/", "-d", "0"],
            self.workdir / "slapd.log", cwd=self.workdir)
        self._proc.start()
        try:
            wait_until(self._answers, START_TIMEOUT, what=f"slapd on port {self.port}")
        except TimeoutError as exc:
            tail = self._proc.log_tail()
            self.stop()
            raise SlapdError(f"slapd did not start: {exc}\n{tail}") from exc
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def _answers(self) -> bool:
        assert self._proc is not None
        if not self._proc.running():
            raise SlapdError(f"slapd exited ({self._proc.returncode()}):\n"
                             f"{self._proc.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _write_config(self) -> Path:
        db = self.workdir / "db"
        db.mkdir(parents=True, exist_ok=True)
        lines = [f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS]
        lines += [
            f"pidfile {self.workdir / 'slapd.pid'}",
            f"argsfile {self.workdir / 'slapd.args'}",
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            # a plain search stops at size_limit; a paged one may read everything
            f"sizelimit size.soft={self.size_limit} size.hard={self.size_limit} "
            f"size.prtotal={self.paged_total or 'unlimited'}",
            "database mdb",
            "maxsize 67108864",
            f'suffix "{BASE}"',
            f'rootdn "{ROOT_DN}"',
            f"rootpw {ROOT_PW}",
            f"directory {db}",
            "access to * by * read",
        ]
        conf = self.workdir / "slapd.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def _all_entries(self) -> list[Entry]:
        return [
            {"dn": BASE, "objectClass": ["dcObject", "organization"], "dc": "example",
             "o": "Exempel AB"},
            {"dn": f"ou=people,{BASE}", "objectClass": "organizationalUnit", "ou": "people"},
            *self.entries,
        ]


def to_ldif(entries: Sequence[Entry]) -> str:
    """LDIF for `entries` (dicts with "dn"); non-ASCII values are base64 as LDIF requires."""
    blocks = []
    for entry in entries:
        lines = []
        for key in ("dn", *(k for k in entry if k != "dn")):
            value = entry[key]
            for one in [value] if isinstance(value, str) else value:
                lines.append(_line(key, one))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _line(key: str, value: str) -> str:
    if value.isascii() and value == value.strip() and not value.startswith((":", "<")) \
            and "\n" not in value:
        return f"{key}: {value}"
    return f"{key}:: {base64.b64encode(value.encode()).decode()}"
