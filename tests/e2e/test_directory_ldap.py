"""The company directory from a real OpenLDAP server (slapd, tests/harness/slapd.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.directory import DirectoryError, Number
from firmware.directory.ldapsource import fetch_ldap
from tests.e2e.conftest import PhoneFactory, wait_registered
from tests.harness.slapd import Slapd
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port

pytestmark = pytest.mark.e2e

PEOPLE = "ou=people,dc=example,dc=se"


def person(cn: str, **attrs: str | list[str]) -> dict[str, str | list[str]]:
    return {"dn": f"cn={cn},{PEOPLE}", "objectClass": "inetOrgPerson", "cn": cn,
            "sn": cn.split()[-1], **attrs}


ENTRIES = [
    person("Åsa Öberg", telephoneNumber="08-123 45 67", mobile="070-123 45 67",
           o="Exempel AB", ou="Ekonomi", description="Attesterar fakturor"),
    person("Björn Ärlig", telephoneNumber=["08-123 45 68", "08-123 45 69"], o="Exempel AB"),
    person("Märta Ljung", mobile="073-555 12 34", homePhone="08-765 43 21", o="Exempel AB",
           displayName="Märta Ljung (Växeln)"),
    person("Göran Ström", telephoneNumber="+46 31 700 10 20", o="Filial Göteborg AB"),
    person("Nils Utan Nummer", o="Exempel AB"),
]


@pytest.fixture(scope="module")
def ldap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    # a server size limit of 2: only a paged search gets all five entries
    with Slapd(tmp_path_factory.mktemp("slapd"), ENTRIES, size_limit=2) as server:
        yield server


def test_contacts_with_numbers_company_and_swedish_names(ldap: Slapd) -> None:
    result = fetch_ldap(ldap.url, ldap.base, bind_dn=ldap.root_dn, password=ldap.root_pw,
                        page_size=2)
    by_name = {c.name: c for c in result.contacts}
    assert set(by_name) == {"Åsa Öberg", "Björn Ärlig", "Märta Ljung (Växeln)", "Göran Ström"}
    asa = by_name["Åsa Öberg"]
    assert asa.numbers == (Number("work", "08-123 45 67"), Number("mobile", "070-123 45 67"))
    assert (asa.company, asa.department, asa.note) == ("Exempel AB", "Ekonomi",
                                                      "Attesterar fakturor")
    assert asa.source == "company" and asa.id.startswith("c:")
    assert [n.value for n in by_name["Björn Ärlig"].numbers] == ["08-123 45 68", "08-123 45 69"]
    assert by_name["Märta Ljung (Växeln)"].numbers == (Number("mobile", "073-555 12 34"),
                                                       Number("home", "08-765 43 21"))
    assert by_name["Göran Ström"].company == "Filial Göteborg AB"
    assert result.format == "ldap"


def test_entry_without_numbers_is_skipped_with_a_problem(ldap: Slapd) -> None:
    result = fetch_ldap(ldap.url, ldap.base, page_size=2)  # anonymous
    assert "Nils Utan Nummer" not in {c.name for c in result.contacts}
    assert result.problems == [f"entry cn=Nils Utan Nummer,{PEOPLE}: Nils Utan Nummer: "
                               "no number: skipped"]


def test_pages_larger_than_the_server_allows_still_read_everything(ldap: Slapd) -> None:
    result = fetch_ldap(ldap.url, ldap.base, page_size=100)
    assert len(result.contacts) == 4


def test_server_size_limit_is_reported(tmp_path: Path) -> None:
    with Slapd(tmp_path, ENTRIES, size_limit=2, paged_total=2) as server:
        result = fetch_ldap(server.url, server.base)
    assert len(result.contacts) <= 2
    assert any(f"LDAP server 127.0.0.1:{server.port} stopped after 2 entries (its size limit)"
               in p for p in result.problems)


def test_own_size_limit(ldap: Slapd) -> None:
    result = fetch_ldap(ldap.url, ldap.base, bind_dn=ldap.root_dn, password=ldap.root_pw,
                        size_limit=3)
    assert 2 <= len(result.contacts) <= 3  # the entry without a number may be among the 3
    assert any("at most 3 entries" in p for p in result.problems)


def test_filter_selects_entries(ldap: Slapd) -> None:
    result = fetch_ldap(ldap.url, ldap.base, filter="(o=Filial*)")
    assert [c.name for c in result.contacts] == ["Göran Ström"]


def test_wrong_password_names_the_server(ldap: Slapd) -> None:
    with pytest.raises(DirectoryError) as err:
        fetch_ldap(ldap.url, ldap.base, bind_dn=ldap.root_dn, password="wrong")
    message = str(err.value)
    assert f"127.0.0.1:{ldap.port}" in message
    assert "could not log in as cn=admin,dc=example,dc=se" in message
    assert "password" in message


def test_missing_base_is_an_error(ldap: Slapd) -> None:
    with pytest.raises(DirectoryError, match="noSuchObject"):
        fetch_ldap(ldap.url, "ou=nobody,dc=example,dc=se")


def test_unreachable_port_fails_quickly() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(DirectoryError, match=f"127.0.0.1:{port}: could not connect"):
        fetch_ldap(f"ldap://127.0.0.1:{port}", "dc=example,dc=se", timeout=1.0)
    assert time.monotonic() - started < 3


def test_silent_server_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        accepted: list[socket.socket] = []
        thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]),
                                  daemon=True)
        thread.start()
        started = time.monotonic()
        with pytest.raises(DirectoryError, match=f"127.0.0.1:{port}"):
            fetch_ldap(f"ldap://127.0.0.1:{port}", "dc=example,dc=se", timeout=1.0)
        assert time.monotonic() - started < 4
        thread.join(1)
        for conn in accepted:
            conn.close()


@pytest.mark.parametrize("url", ["http://ldap.example.se", "ldaps://h?starttls", "ldap://"])
def test_bad_url(url: str) -> None:
    with pytest.raises(DirectoryError, match="LDAP URL"):
        fetch_ldap(url, "dc=example,dc=se")


def test_starttls_checks_the_certificate(ldap: Slapd) -> None:
    # the test server has no TLS: StartTLS must fail rather than fall back to plain text
    with pytest.raises(DirectoryError, match="StartTLS"):
        fetch_ldap(f"{ldap.url}?starttls", ldap.base)


def test_a_phone_reads_its_company_directory_from_ldap(ldap: Slapd, pbx: Kamailio,
                                                       make_phone: PhoneFactory) -> None:
    phone = make_phone("1001", pbx.port, extra=(
        f'[directory]\nldap_url = "{ldap.url}"\nldap_base = "{PEOPLE}"\n'
        f'ldap_bind_dn = "{ldap.root_dn}"\nldap_password = "{ldap.root_pw}"\n'))
    wait_registered(phone)
    phone.key("directory")
    phone.keys("272")  # Å-S-A: T9 folds Å onto 2
    phone.wait_text("Åsa Öberg", 10)
