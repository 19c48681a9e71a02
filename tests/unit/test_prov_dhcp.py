"""Tests for provisioning.dhcp: lease files of dhclient, systemd-networkd, dhcpcd and hooks."""

from __future__ import annotations

import ipaddress
import json
import os
import random
from pathlib import Path

import pytest

from provisioning.dhcp import (
    MAX_LEASE_BYTES,
    DhcpOptions,
    normalise_url,
    parse_dhclient,
    parse_dhcp_packet,
    parse_dhcpcd,
    parse_hook,
    parse_networkd,
    provisioning_urls,
    read_leases,
    sip_servers,
)

URL43 = b"https://prov.example.se/luren/"


def tlv(*subs: tuple[int, bytes]) -> bytes:
    """Option 43 sub-options."""
    return b"".join(bytes([code, len(data)]) + data for code, data in subs)


def dhclient_hex(data: bytes) -> str:
    """Hex the way dhclient writes it: colons, no leading zeros."""
    return ":".join(f"{b:x}" for b in data)


def names_120(*names: str) -> bytes:
    """Option 120, encoding 0."""
    out = b"\x00"
    for name in names:
        out += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return out


def addrs_120(*addrs: str) -> bytes:
    """Option 120, encoding 1."""
    return b"\x01" + b"".join(ipaddress.IPv4Address(a).packed for a in addrs)


VENDOR43 = tlv((1, URL43))

DHCLIENT = f"""\
default-duid "\\000\\001\\000\\001,\\233\\3623RT\\000\\022\\064V";
lease {{
  interface "eth0";
  fixed-address 192.168.10.57;
  option subnet-mask 255.255.255.0;
  option routers 192.168.10.1;
  option dhcp-lease-time 86400;
  option dhcp-message-type 5;
  option domain-name-servers 192.168.10.1,192.168.10.2;
  option dhcp-server-identifier 192.168.10.1;
  option tftp-server-name "old-prov.example.se";
  option domain-name "office.example.se";
  renew 3 2025/06/18 21:14:07;
  rebind 4 2025/06/19 06:31:12;
  expire 4 2025/06/19 09:31:12;
}}
lease {{
  interface "eth0";
  fixed-address 192.168.10.57;
  filename "pxelinux.0";
  option subnet-mask 255.255.255.0;
  option routers 192.168.10.1;
  option dhcp-lease-time 86400;
  option dhcp-message-type 5;
  option domain-name-servers 192.168.10.1,192.168.10.2;
  option dhcp-server-identifier 192.168.10.1;
  option tftp-server-name "tftp.example.se";
  option vendor-class-identifier "luren";
  option vendor-encapsulated-options {dhclient_hex(VENDOR43)};
  option default-url "https://dflt.example.se/ph\\157ne;x=1";
  option unknown-160 "http://poly.example.se:8080/cfg/\\000";
  option sip-servers {dhclient_hex(names_120("sip.example.se", "sip2.example.se"))};
  option domain-name "office.example.se";
  renew 3 2025/06/19 21:14:07;
  rebind 4 2025/06/20 06:31:12;
  expire 4 2025/06/20 09:31:12;
}}
"""


def test_dhclient_uses_the_last_lease_block_with_every_option() -> None:
    options = parse_dhclient(DHCLIENT, "dhclient:/var/lib/dhcp/dhclient.eth0.leases")
    assert options.source == "dhclient:/var/lib/dhcp/dhclient.eth0.leases"
    assert options.problems == []
    assert options.raw[66] == b"tftp.example.se"
    assert options.raw[43] == VENDOR43
    assert options.raw[60] == b"luren"
    assert options.raw[114] == b"https://dflt.example.se/phone;x=1"
    assert options.raw[160] == b"http://poly.example.se:8080/cfg/\x00"
    assert provisioning_urls(options) == [
        ("option 160", "http://poly.example.se:8080/cfg/"),
        ("option 114", "https://dflt.example.se/phone;x=1"),
        ("option 66", "https://tftp.example.se/"),
        ("option 43", URL43.decode()),
    ]
    assert sip_servers(options) == ["sip.example.se", "sip2.example.se"]


def test_dhclient_escapes_and_value_forms() -> None:
    text = r"""
lease {
  interface "eth0";
  option unknown-224 "q\"uote\\back\101\303\251\x41\t.";
  option unknown-225 "semi;colon {brace}";
  option unknown-226 1:2:a:ff;
  option unknown-227 7;
  option tftp-server-name prov.example.se;
  option unknown-120 "\001\300\000\002\012\300\000\002\013";
}
"""
    options = parse_dhclient(text)
    assert options.problems == []
    assert options.raw[224] == b'q"uote\\backA\xc3\xa9A\t.'
    assert options.raw[225] == b"semi;colon {brace}"
    assert options.raw[226] == b"\x01\x02\x0a\xff"
    assert options.raw[227] == b"\x07"
    assert provisioning_urls(options) == [("option 66", "https://prov.example.se/")]
    assert sip_servers(options) == ["192.0.2.10", "192.0.2.11"]


def test_dhclient_cut_short_file_falls_back_to_the_complete_block() -> None:
    cut = DHCLIENT + 'lease {\n  interface "eth0";\n  option tftp-server-name "new.exa'
    options = parse_dhclient(cut)
    assert options.raw[66] == b"tftp.example.se"
    assert any("not closed" in p for p in options.problems)
    cut = DHCLIENT + 'lease {\n  interface "eth0";\n  option tftp-server-name "new";\n'
    options = parse_dhclient(cut)
    assert options.raw[66] == b"tftp.example.se"
    assert any("incomplete" in p for p in options.problems)


def test_dhclient_without_lease_block() -> None:
    options = parse_dhclient('default-duid "\\000\\001";\n')
    assert options.raw == {}
    assert any("no complete 'lease" in p for p in options.problems)


NETWORKD = f"""\
# This is private data. Do not parse.
ADDRESS=192.168.10.57
NETMASK=255.255.255.0
ROUTER=192.168.10.1
SERVER_ADDRESS=192.168.10.1
NEXT_SERVER=192.168.10.5
BROADCAST=192.168.10.255
T1=12h
T2=21h
LIFETIME=1d
DNS=192.168.10.1 192.168.10.2
NTP=192.168.10.1
SIP=192.168.10.20 192.168.10.21
DOMAINNAME=office.example.se
CLIENTID=ff56cd5ab80002000021c5a8f3b2c1d0e0f1
VENDOR_SPECIFIC={VENDOR43.hex()}
OPTION_224={b"https://private.example.se/".hex()}
"""


def test_networkd_lease() -> None:
    options = parse_networkd(NETWORKD, "networkd:/run/systemd/netif/leases/2")
    assert options.problems == []
    assert options.raw[43] == VENDOR43
    assert options.raw[224] == b"https://private.example.se/"
    assert options.next_server == "192.168.10.5"
    assert sip_servers(options) == ["192.168.10.20", "192.168.10.21"]
    assert provisioning_urls(options) == [("option 43", URL43.decode())]
    assert provisioning_urls(options, use_next_server=True) == [
        ("option 43", URL43.decode()),
        ("next-server", "https://192.168.10.5/"),
    ]


def test_networkd_bad_values_are_problems() -> None:
    text = "ADDRESS=192.168.10.57\nVENDOR_SPECIFIC=01zz\nSIP=sip.example.se,x\nNEXT_SERVER=nope\n"
    options = parse_networkd(text)
    assert options.raw == {}
    assert options.next_server is None
    assert len(options.problems) == 3
    assert any("VENDOR_SPECIFIC is not hex" in p for p in options.problems)


DHCPCD_9 = f"""\
broadcast_address=192.168.10.255
dhcp_lease_time=86400
dhcp_message_type=5
dhcp_server_identifier=192.168.10.1
domain_name=office.example.se
domain_name_servers=192.168.10.1 192.168.10.2
ip_address=192.168.10.57
network_number=192.168.10.0
routers=192.168.10.1
sip_server=sip.example.se sip2.example.se
subnet_cidr=24
subnet_mask=255.255.255.0
tftp_server_name=tftp.example.se
vendor_class_identifier=luren
vendor_encapsulated_options={VENDOR43.hex()}
option_114=https://dflt.example.se/
unknown_160={b"https://poly.example.se/".hex()}
"""

DHCPCD_OLD = """\
new_ip_address='192.168.10.57'
new_dhcp_server_identifier='192.168.10.1'
new_sip_server='192.0.2.10 192.0.2.11'
new_tftp_server_name=''
new_polycom_url='https://poly.example.se/it'\\''s/'
"""


def test_dhcpcd_dump() -> None:
    options = parse_dhcpcd(DHCPCD_9, "dhcpcd:eth0")
    assert options.problems == []
    assert sip_servers(options) == ["sip.example.se", "sip2.example.se"]
    assert provisioning_urls(options) == [
        ("option 160", "https://poly.example.se/"),
        ("option 114", "https://dflt.example.se/"),
        ("option 66", "https://tftp.example.se/"),
        ("option 43", URL43.decode()),
    ]


def test_dhcpcd_old_quoted_dump_and_defined_names() -> None:
    options = parse_dhcpcd(DHCPCD_OLD, names={"polycom_url": 160})
    assert options.raw[160] == b"https://poly.example.se/it's/"
    assert sip_servers(options) == ["192.0.2.10", "192.0.2.11"]
    assert 66 not in options.raw
    assert any("define 66 string tftp_server_name" in p for p in options.problems)
    broken = parse_dhcpcd("new_tftp_server_name='never closed\n")
    assert broken.raw == {}
    assert any("not closed" in p for p in broken.problems)


def test_hook_json() -> None:
    hook = {
        "66": "10.1.2.3:8443",
        "43": dhclient_hex(VENDOR43),
        "60": "Luren",
        "114": "https://dflt.example.se/",
        "160": "https://poly.example.se/",
        "120": addrs_120("192.0.2.10").hex(),
        "next-server": "192.168.10.5",
    }
    options = parse_hook(json.dumps(hook), "hook:/run/luren/dhcp.json")
    assert options.problems == []
    assert options.next_server == "192.168.10.5"
    assert provisioning_urls(options) == [
        ("option 160", "https://poly.example.se/"),
        ("option 114", "https://dflt.example.se/"),
        ("option 66", "https://10.1.2.3:8443/"),
        ("option 43", URL43.decode()),
    ]
    assert sip_servers(options) == ["192.0.2.10"]


def test_hook_garbage() -> None:
    assert parse_hook("[1, 2]").problems
    assert parse_hook("{not json").problems
    options = parse_hook(json.dumps({"43": "zz", "66": 5, "x": "y", "300": "a"}))
    assert options.raw == {}
    assert len(options.problems) == 4


@pytest.mark.parametrize(
    ("vendor", "used"),
    [
        (None, True),
        (b"luren", True),
        (b"LUREN\x00", True),
        (b"Cisco Systems, Inc. IP Phone", False),
    ],
)
def test_option_43_only_for_our_vendor_class(vendor: bytes | None, used: bool) -> None:
    raw = {43: VENDOR43} if vendor is None else {43: VENDOR43, 60: vendor}
    options = DhcpOptions(raw, "test")
    expected = [("option 43", URL43.decode())] if used else []
    assert provisioning_urls(options) == expected
    if vendor is not None and not used:
        assert provisioning_urls(options, vendor_class="cisco systems, inc. ip phone") == [
            ("option 43", URL43.decode())
        ]


def test_option_43_tlv_padding_end_and_repeats() -> None:
    payload = b"\x00\x00" + tlv((2, b"reserved"), (1, b"https://p.exa"), (1, b"mple.se/")) + b"\xff"
    payload += tlv((1, b"after-end"))
    options = parse_hook(json.dumps({"43": payload.hex()}))
    assert options.problems == []
    assert provisioning_urls(options) == [("option 43", "https://p.example.se/")]


def test_option_43_broken_tlv_is_skipped_with_a_problem() -> None:
    truncated = tlv((1, URL43))[:-5]
    options = parse_hook(json.dumps({"43": truncated.hex(), "66": "tftp.example.se"}))
    assert provisioning_urls(options) == [("option 66", "https://tftp.example.se/")]
    assert any("cut short" in p and "option 43" in p for p in options.problems)
    options = parse_hook(json.dumps({"43": "01"}))
    assert any("no length" in p for p in options.problems)
    options = parse_hook(json.dumps({"43": tlv((2, b"x")).hex()}))
    assert any("no sub-option 1" in p for p in options.problems)
    # Another vendor's option 43 is not this phone's business: no complaint.
    options = parse_hook(json.dumps({"43": "01", "60": "OtherVendor"}))
    assert options.problems == []


def test_option_120_encodings_and_malformed() -> None:
    assert sip_servers(DhcpOptions({120: names_120("a.example.se")}, "t")) == ["a.example.se"]
    assert sip_servers(DhcpOptions({120: addrs_120("192.0.2.1", "192.0.2.2")}, "t")) == [
        "192.0.2.1",
        "192.0.2.2",
    ]
    bad = {
        "compression": b"\x00\x03sip\xc0\x02",
        "encoding": b"\x07\x01\x02\x03\x04",
        "partial address": b"\x01\xc0\x00\x02",
        "unterminated": b"\x00\x03sip",
        "cut label": b"\x00\x09sip",
        "empty": b"",
    }
    for why, payload in bad.items():
        options = parse_hook(json.dumps({"120": payload.hex()}))
        assert sip_servers(options) == [], why
        assert any("option 120" in p for p in options.problems), why


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("prov.example.se", "https://prov.example.se/"),
        ("  prov.example.se\x00\x00", "https://prov.example.se/"),
        ("10.1.2.3", "https://10.1.2.3/"),
        ("10.1.2.3:8443/phones", "https://10.1.2.3:8443/phones"),
        ("[fd00::5]:443", "https://[fd00::5]:443/"),
        ("https://prov.example.se/a/", "https://prov.example.se/a/"),
        ("http://prov.example.se", "http://prov.example.se"),
        ("tftp://10.1.2.3/cfg", "tftp://10.1.2.3/cfg"),
        ("not a host", None),
        ("10.1.2.300", None),
        ("prov.example.se:99999", None),
        ("https://", None),
        ("https://prov.example.se/<x>", None),
        ("", None),
    ],
)
def test_url_normalisation(value: str, url: str | None) -> None:
    assert normalise_url(value)[0] == url


def test_a_url_listed_once() -> None:
    options = parse_hook(json.dumps({"160": "https://p.example.se/", "66": "p.example.se"}))
    assert provisioning_urls(options) == [("option 160", "https://p.example.se/")]


def test_bad_url_options_are_problems_not_urls() -> None:
    options = parse_hook(json.dumps({"66": "bad host!", "114": "\u00e9\x00x", "160": " "}))
    assert provisioning_urls(options) == []
    assert len(options.problems) == 3
    assert any("option 66 (TFTP server name)" in p for p in options.problems)


JUNK = bytes(random.Random(7).randrange(256) for _ in range(64 * 1024))


@pytest.mark.parametrize("parse", [parse_dhclient, parse_networkd, parse_dhcpcd, parse_hook])
def test_junk_never_raises(parse) -> None:
    for text in (JUNK.decode("latin-1"), JUNK.decode("utf-8", "replace"), "\x00" * 100, "}{;"):
        options = parse(text)
        assert isinstance(options, DhcpOptions)
        assert options.problems


def test_huge_input_is_cut_or_refused() -> None:
    filler = "# " + "x" * 78 + "\n"
    huge = filler * (2 * MAX_LEASE_BYTES // len(filler)) + DHCLIENT
    options = parse_dhclient(huge)
    assert options.raw[66] == b"tftp.example.se"
    assert any("only its last" in p for p in options.problems)
    for parse in (parse_networkd, parse_dhcpcd, parse_hook):
        assert parse("A=b\n" * MAX_LEASE_BYTES).problems


def dhcp_ack(options: dict[int, bytes], siaddr: str = "0.0.0.0") -> bytes:
    """A DHCP ACK as dhcpcd stores it in /var/lib/dhcpcd/<interface>.lease."""
    head = bytearray(236)
    head[0:4] = b"\x02\x01\x06\x00"
    head[16:20] = ipaddress.IPv4Address("192.168.10.57").packed
    head[20:24] = ipaddress.IPv4Address(siaddr).packed
    body = b"\x35\x01\x05" + b"".join(bytes([c, len(v)]) + v for c, v in options.items())
    return bytes(head) + b"\x63\x82\x53\x63" + body + b"\xff"


def test_raw_dhcp_message() -> None:
    packet = dhcp_ack({66: b"tftp.example.se", 43: VENDOR43}, siaddr="192.168.10.5")
    options = parse_dhcp_packet(packet)
    assert options.problems == []
    assert options.next_server == "192.168.10.5"
    assert provisioning_urls(options) == [
        ("option 66", "https://tftp.example.se/"),
        ("option 43", URL43.decode()),
    ]
    assert parse_dhcp_packet(packet[:-20]).problems
    assert parse_dhcp_packet(b"\x02" * 100).problems


def write(path: Path, data: str | bytes, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def test_read_leases_picks_the_newest_and_guesses_its_kind(tmp_path: Path) -> None:
    base = 1_750_000_000
    dhclient = write(tmp_path / "dhcp" / "dhclient.eth0.leases", DHCLIENT, base)
    networkd = write(tmp_path / "netif" / "leases" / "2", NETWORKD, base + 10)
    hook = write(tmp_path / "hook" / "dhcp.json", json.dumps({"66": "h.example.se"}), base + 5)
    dhcpcd = write(tmp_path / "dhcpcd" / "eth0.lease", dhcp_ack({66: b"d.example.se"}), base + 1)
    missing = tmp_path / "nope.leases"
    paths = [missing, tmp_path, dhclient, networkd, hook, dhcpcd]

    options = read_leases(paths)
    assert options is not None
    assert options.source == f"networkd:{networkd}"
    assert options.raw[43] == VENDOR43

    os.utime(dhclient, (base + 20, base + 20))
    options = read_leases(paths)
    assert options is not None and options.source == f"dhclient:{dhclient}"
    assert options.raw[66] == b"tftp.example.se"

    os.utime(hook, (base + 30, base + 30))
    options = read_leases(paths)
    assert options is not None and options.source == f"hook:{hook}"

    os.utime(dhcpcd, (base + 40, base + 40))
    options = read_leases(paths)
    assert options is not None and options.source == f"dhcp-packet:{dhcpcd}"
    assert provisioning_urls(options) == [("option 66", "https://d.example.se/")]

    dump = write(tmp_path / "dhcpcd-U.txt", DHCPCD_9, base + 50)
    options = read_leases([*paths, dump])
    assert options is not None and options.source == f"dhcpcd:{dump}"

    assert read_leases([missing, tmp_path]) is None
    assert read_leases([]) is None


def test_read_leases_junk_and_huge_files(tmp_path: Path) -> None:
    junk = write(tmp_path / "junk.bin", JUNK, 1_750_000_000)
    options = read_leases([junk])
    assert options is not None
    assert options.problems

    huge = tmp_path / "dhclient.eth1.leases"
    with huge.open("w") as f:
        f.write(DHCLIENT * (2 * MAX_LEASE_BYTES // len(DHCLIENT)))
        f.write("garbage { ; \n" * 1000)
        f.write(DHCLIENT)
    options = read_leases([huge])
    assert options is not None
    assert options.raw[66] == b"tftp.example.se"
    assert any("only its last" in p for p in options.problems)


def test_read_leases_cut_never_starts_inside_a_quote(tmp_path: Path) -> None:
    block = 'lease {\n  option domain-name "' + "a" * 200 + '";\n}\n'
    count = MAX_LEASE_BYTES // len(block) + 2
    size = len(block) * count + len(DHCLIENT)
    inside = block.index("a" * 100)  # the cut lands here, in the middle of the quoted text
    padding = (inside - (size - MAX_LEASE_BYTES)) % len(block)
    path = tmp_path / "dhclient.leases"
    path.write_text("#" * (padding - 1) + "\n" + block * count + DHCLIENT)
    cut = path.stat().st_size - MAX_LEASE_BYTES
    assert path.read_text()[cut - 1 : cut + 1] == "aa"
    options = read_leases([path])
    assert options is not None
    assert options.raw[66] == b"tftp.example.se"
    assert options.raw[43] == VENDOR43
