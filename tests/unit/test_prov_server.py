"""The provisioning server: device inventory, rendering the signed tree, and the command line."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from firmware.config import parse_config
from firmware.config.overrides import deep_merge
from provisioning.server.cli import main
from provisioning.server.inventory import Inventory, normalize_mac
from provisioning.server.render import (
    WITHHELD_NO_ENCRYPTOR,
    WITHHELD_NO_KEY,
    RenderReport,
    TemplateError,
    render_tree,
)

SIGNATURE = b"#signed\n"

COMMON = """\
[device]
language = "en"
time_zone = "${tz}"

[_provisioning]
lock = ["device.language"]
"""

MODEL_T42 = """\
[sip]
user_agent = "Luren ${model} at ${site_name}"
"""

MODEL_T48 = """\
[device]
max_calls = 2
"""

SITE = {"tz": "UTC", "site_name": "HQ", "registrar": "pbx.example.se"}

MAC_A = "001a2b3c4d5e"  # device key: encrypted
MAC_B = "001a2b3c4d5f"  # no device key: passwords withheld
MAC_C = "001a2b3c4d60"  # no key and no password: nothing to withhold
MAC_D = "001a2b3c4d61"  # model T48, device key
PASSWORDS = ("Alpha-pw-1", "alpha-PW-2", "Bravo-pw-1", "Delta-pw-1")


def fake_sign(body: bytes) -> bytes:
    return SIGNATURE + body


def fake_encrypt(body: bytes, key: str) -> bytes:
    return b"ENC:" + key.encode() + b":" + body[::-1]


def unsign(data: bytes) -> bytes:
    assert data.startswith(SIGNATURE)
    return data[len(SIGNATURE):]


def decrypt(data: bytes) -> tuple[str, bytes]:
    """(key, body) of a fake-encrypted, fake-signed file."""
    body = unsign(data)
    assert body.startswith(b"ENC:")
    key, _, reversed_body = body[4:].partition(b":")
    return key.decode(), reversed_body[::-1]


def toml_of(path: Path) -> dict[str, Any]:
    return tomllib.loads(unsign(path.read_bytes()).decode())


@pytest.fixture
def inventory(tmp_path: Path) -> Any:
    inv = Inventory(tmp_path / "inventory.db")
    yield inv
    inv.close()


@pytest.fixture
def fleet(inventory: Inventory) -> Inventory:
    """Four phones of two models, with templates and the common layer."""
    inventory.set_common(COMMON)
    inventory.set_model_template("T42", MODEL_T42)
    inventory.set_model_template("T48", MODEL_T48)
    inventory.add_device("00:1A:2B:3C:4D:5E", "T42", "Reception", public_key="KEY-A")
    inventory.set_line(MAC_A, 1, "1001", PASSWORDS[0], display_name="Anna", label="Anna")
    inventory.set_line(MAC_A, 2, "2001", PASSWORDS[1], registrar="pbx2.example.se:5070")
    inventory.add_device("00-1a-2b-3c-4d-5f", "T42", "Office")
    inventory.set_line(MAC_B, 1, "1002", PASSWORDS[2])
    inventory.add_device("001a.2b3c.4d60", "T42", "Lobby")
    inventory.set_line(MAC_C, 1, "1003", "")
    inventory.add_device(MAC_D, "T48", "Boss", public_key="KEY-D")
    inventory.set_line(MAC_D, 1, "1004", PASSWORDS[3])
    return inventory


def render(inv: Inventory, out: Path, **kwargs: Any) -> RenderReport:
    options: dict[str, Any] = {"signer": fake_sign, "encryptor": fake_encrypt, "site": SITE}
    return render_tree(inv, out, **(options | kwargs))


def tree_files(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` (hidden ones too) -> its bytes."""
    return {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def stamps(out: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()}


# --- inventory --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e",
                                  "001A2B3C4D5E", " 00:1a:2b-3c:4d-5E\n"])
def test_mac_forms_are_normalised(text: str) -> None:
    assert normalize_mac(text) == "001a2b3c4d5e"


@pytest.mark.parametrize(("text", "why"), [
    ("", "not a MAC address"),
    ("001a2b3c4d5", "not a MAC address"),
    ("001a2b3c4d5e0f", "not a MAC address"),
    ("00:1a:2b:3c:4d:zz", "not a MAC address"),
    ("00 1a 2b 3c 4d 5e", "not a MAC address"),
    ("00:00:00:00:00:00", "all-zero"),
    ("ff:ff:ff:ff:ff:ff", "multicast/broadcast"),
    ("01:00:5e:00:00:fb", "multicast/broadcast"),
])
def test_bad_macs_are_refused_in_words(inventory: Inventory, text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        inventory.add_device(text, "T42")
    assert inventory.devices() == []


def test_add_read_and_repr_without_secrets(inventory: Inventory) -> None:
    mac = inventory.add_device("00:1A:2B:3C:4D:5E", "T42", "Reception", public_key=" KEY \n",
                               cert_sha256="AB" * 32, secret="dev-secret")
    assert mac == MAC_A
    inventory.set_line(mac, 2, "2001", "pw-two", registrar="pbx:5070")
    inventory.set_line(mac, 1, "1001", "pw-one", display_name="Anna", label="A")
    device = inventory.device("00-1a-2b-3c-4d-5e")
    assert device is not None
    assert (device.mac, device.model, device.name) == (MAC_A, "T42", "Reception")
    assert (device.public_key, device.cert_sha256, device.secret) == ("KEY", "ab" * 32,
                                                                      "dev-secret")
    assert [(line.index, line.user, line.password, line.registrar) for line in device.lines] == [
        (1, "1001", "pw-one", ""), (2, "2001", "pw-two", "pbx:5070")]
    assert (device.lines[0].display_name, device.lines[0].label) == ("Anna", "A")
    assert device.created <= device.updated
    for secret in ("pw-one", "pw-two", "dev-secret"):
        assert secret not in repr(device)
    assert inventory.devices() == [device]
    assert inventory.device("02:00:00:00:00:01") is None


def test_duplicate_mac_is_refused_in_words(inventory: Inventory) -> None:
    inventory.add_device(MAC_A, "T42", "first")
    with pytest.raises(ValueError, match=r"already in the inventory \(model T42\)"):
        inventory.add_device("00:1A:2B:3C:4D:5E", "T48", "second")
    [device] = inventory.devices()
    assert (device.model, device.name) == ("T42", "first")


def test_set_line_replaces_and_checks(inventory: Inventory) -> None:
    inventory.add_device(MAC_A, "T42")
    inventory.set_line(MAC_A, 1, "1001", "old")
    inventory.set_line(MAC_A, 1, "1009", "new", label="L")
    device = inventory.device(MAC_A)
    assert device is not None
    assert [(line.user, line.password, line.label) for line in device.lines] == [
        ("1009", "new", "L")]
    for index in (0, 17):
        with pytest.raises(ValueError, match="from 1 to 16"):
            inventory.set_line(MAC_A, index, "1001", "x")
    with pytest.raises(ValueError, match=f"no device {MAC_B}"):
        inventory.set_line(MAC_B, 1, "1001", "x")
    inventory.remove_line(MAC_A, 1)
    device = inventory.device(MAC_A)
    assert device is not None and device.lines == ()


def test_update_device_changes_only_what_is_given(inventory: Inventory) -> None:
    inventory.add_device(MAC_A, "T42", "Reception", secret="s")
    inventory.update_device(MAC_A, public_key="KEY-A")
    device = inventory.device(MAC_A)
    assert device is not None
    assert (device.model, device.name, device.public_key, device.secret) == (
        "T42", "Reception", "KEY-A", "s")
    with pytest.raises(ValueError, match="no device"):
        inventory.update_device(MAC_B, name="x")


def test_remove_device_takes_its_lines(inventory: Inventory) -> None:
    inventory.add_device(MAC_A, "T42")
    inventory.set_line(MAC_A, 1, "1001", "pw")
    inventory.remove_device("00:1a:2b:3c:4d:5e")
    assert inventory.device(MAC_A) is None
    inventory.add_device(MAC_A, "T42")
    device = inventory.device(MAC_A)
    assert device is not None and device.lines == ()  # no orphan line came back
    with pytest.raises(ValueError, match=f"no device {MAC_B}"):
        inventory.remove_device(MAC_B)


@pytest.mark.parametrize("model", ["common", "Common", "index", "../etc", "a b", "",
                                   "001A2B3C4D5E"])
def test_model_names_that_would_clash_or_escape_are_refused(inventory: Inventory,
                                                            model: str) -> None:
    with pytest.raises(ValueError, match="model name"):
        inventory.add_device(MAC_A, model)
    with pytest.raises(ValueError, match="model name"):
        inventory.set_model_template(model, "")


def test_malformed_placeholder_is_refused_when_set(inventory: Inventory) -> None:
    with pytest.raises(ValueError, match="model template 'T42': malformed placeholder"):
        inventory.set_model_template("T42", 'price = "$5"\n')
    with pytest.raises(ValueError, match="common template: malformed placeholder"):
        inventory.set_common('x = "${"\n')
    assert inventory.model_templates() == {} and inventory.common() == ""


def test_database_is_private_wal_and_persistent(tmp_path: Path) -> None:
    path = tmp_path / "inv.db"
    with Inventory(path) as inv:
        inv.add_device(MAC_A, "T42", "Reception")
        inv.set_line(MAC_A, 1, "1001", "pw")
        inv.set_common("[device]\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with Inventory(path) as inv:
        device = inv.device(MAC_A)
        assert device is not None and device.lines[0].password == "pw"
        assert inv.common() == "[device]\n"


# --- rendering ----------------------------------------------------------------------------------


def test_render_writes_the_signed_tree(fleet: Inventory, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    report = render(fleet, out)
    assert report.errors == {}
    expected = {"common.toml", "T42.toml", "T48.toml", "index.json",
                *(f"{mac}.toml" for mac in (MAC_A, MAC_B, MAC_C, MAC_D))}
    assert set(os.listdir(out)) == expected  # no temp files left over
    assert sorted(report.written) == sorted(expected) and report.unchanged == []

    common = toml_of(out / "common.toml")
    assert common["device"] == {"language": "en", "time_zone": "UTC"}
    assert common["_provisioning"] == {"lock": ["device.language"]}  # kept for the phone
    assert toml_of(out / "T42.toml") == {"sip": {"user_agent": "Luren T42 at HQ"}}
    assert toml_of(out / "T48.toml") == {"device": {"max_calls": 2}}

    assert toml_of(out / f"{MAC_B}.toml") == {
        "device": {"name": "Office"},
        "lines": [{"user": "1002", "registrar": "pbx.example.se"}]}  # site default registrar
    assert toml_of(out / f"{MAC_C}.toml") == {
        "device": {"name": "Lobby"}, "lines": [{"user": "1003", "registrar": "pbx.example.se"}]}

    key, body = decrypt((out / f"{MAC_A}.toml").read_bytes())
    assert key == "KEY-A"
    assert tomllib.loads(body.decode()) == {
        "device": {"name": "Reception"},
        "lines": [
            {"user": "1001", "password": PASSWORDS[0], "registrar": "pbx.example.se",
             "display_name": "Anna", "label": "Anna"},
            {"user": "2001", "password": PASSWORDS[1], "registrar": "pbx2.example.se:5070"}]}
    key, body = decrypt((out / f"{MAC_D}.toml").read_bytes())
    assert key == "KEY-D" and tomllib.loads(body.decode())["lines"][0]["password"] == PASSWORDS[3]


def test_layered_result_is_a_valid_phone_config(fleet: Inventory, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    render(fleet, out)
    common = toml_of(out / "common.toml")
    del common["_provisioning"]
    _, body = decrypt((out / f"{MAC_A}.toml").read_bytes())
    model = toml_of(out / "T42.toml")
    config = parse_config(deep_merge(deep_merge(common, model), tomllib.loads(body.decode())))
    assert config.device.language == "en" and config.device.name == "Reception"
    assert config.sip.user_agent == "Luren T42 at HQ"
    assert [line.password for line in config.lines] == list(PASSWORDS[:2])


def test_passwords_never_in_clear_and_withheld_listed(fleet: Inventory, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    report = render(fleet, out)
    files = tree_files(out)
    for name, data in files.items():
        for password in PASSWORDS:
            assert password.encode() not in data, f"{password} in clear in {name}"
    assert report.withheld == {MAC_B: WITHHELD_NO_KEY}
    assert b"password" not in unsign(files[f"{MAC_B}.toml"])


def test_without_encryptor_every_password_is_withheld(fleet: Inventory, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    report = render(fleet, out, encryptor=None)
    assert report.withheld == {MAC_A: WITHHELD_NO_ENCRYPTOR, MAC_B: WITHHELD_NO_KEY,
                               MAC_D: WITHHELD_NO_ENCRYPTOR}
    for name, data in tree_files(out).items():
        assert b"password" not in data, name
        assert b"ENC:" not in data, name
    assert toml_of(out / f"{MAC_A}.toml")["lines"][1] == {
        "user": "2001", "registrar": "pbx2.example.se:5070"}


def test_invalid_device_is_reported_and_not_written(fleet: Inventory, tmp_path: Path) -> None:
    bad_user, bad_registrar = "021111111111", "022222222222"
    fleet.add_device(bad_user, "T42")
    fleet.set_line(bad_user, 1, "", "pw-x")
    fleet.add_device(bad_registrar, "T48")
    fleet.set_line(bad_registrar, 1, "1005", "", registrar="pbx..example.se")
    out = tmp_path / "tree"
    report = render(fleet, out)
    assert set(report.errors) == {bad_user, bad_registrar}
    assert report.errors[bad_user].startswith(f"{bad_user}: lines[0].user: must be a SIP user")
    assert f"{bad_registrar}: lines[0].registrar:" in report.errors[bad_registrar]
    assert "pbx..example.se" in report.errors[bad_registrar]
    assert not (out / f"{bad_user}.toml").exists()
    assert not (out / f"{bad_registrar}.toml").exists()
    for mac in (MAC_A, MAC_B, MAC_C, MAC_D):
        assert (out / f"{mac}.toml").exists()
    assert not report.ok


def test_device_broken_later_keeps_its_previous_file(fleet: Inventory, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    render(fleet, out)
    before = (out / f"{MAC_C}.toml").read_bytes()
    fleet.set_line(MAC_C, 1, "1003", "", registrar="sip:user@pbx")
    report = render(fleet, out)
    assert "lines[0].registrar" in report.errors[MAC_C]
    assert (out / f"{MAC_C}.toml").read_bytes() == before
    index = {e["name"]: e for e in json.loads((out / "index.json").read_bytes())["files"]}
    assert index[f"{MAC_C}.toml"]["sha256"] == hashlib.sha256(before).hexdigest()


def test_no_registrar_anywhere_is_an_error(fleet: Inventory, tmp_path: Path) -> None:
    site = {key: value for key, value in SITE.items() if key != "registrar"}
    report = render(fleet, tmp_path / "tree", site=site)
    assert sorted(report.errors) == [MAC_A, MAC_B, MAC_C, MAC_D]  # all have a line without one
    for mac, message in report.errors.items():
        assert message == f"{mac}: lines[0].registrar: missing required key"


def test_validate_false_writes_without_checking(fleet: Inventory, tmp_path: Path) -> None:
    fleet.set_line(MAC_C, 1, "", "")
    report = render(fleet, tmp_path / "tree", validate=False)
    assert report.errors == {}
    assert toml_of(tmp_path / "tree" / f"{MAC_C}.toml")["lines"][0]["user"] == ""


def test_model_without_template_is_an_error(fleet: Inventory, tmp_path: Path) -> None:
    fleet.add_device("023333333333", "X1")
    fleet.set_line("023333333333", 1, "1009", "")
    report = render(fleet, tmp_path / "tree")
    assert report.errors == {"023333333333": "023333333333: model 'X1' has no template; set "
                                             "one with set-model"}
    assert not (tmp_path / "tree" / "X1.toml").exists()


def test_unknown_placeholder_names_template_and_placeholder(fleet: Inventory,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "tree"
    fleet.set_model_template("T48", '[device]\nname = "${floor}"\n')
    with pytest.raises(TemplateError, match=r"model template 'T48': unknown placeholder "
                                            r"\$\{floor\}"):
        render(fleet, out)
    assert not out.exists() or os.listdir(out) == []  # nothing written
    fleet.set_model_template("T48", "")
    fleet.set_common('[sip]\nuser_agent = "$agent"\n')
    with pytest.raises(TemplateError, match=r"common template: unknown placeholder \$\{agent\}"):
        render(fleet, out)


def test_per_device_placeholder_in_shared_file_is_refused(fleet: Inventory,
                                                          tmp_path: Path) -> None:
    fleet.set_model_template("T42", '[device]\nname = "${name}"\n')
    with pytest.raises(TemplateError, match=r"\$\{name\} is a per-device value"):
        render(fleet, tmp_path / "tree")
    fleet.set_model_template("T42", "")
    fleet.set_common('[device]\nname = "${model}"\n')
    with pytest.raises(TemplateError, match=r"\$\{model\} is only known in model templates"):
        render(fleet, tmp_path / "tree")


def test_shared_password_refused_other_secrets_warned(fleet: Inventory, tmp_path: Path) -> None:
    fleet.set_model_template(
        "T42", '[[lines]]\nuser = "1"\nregistrar = "pbx"\npassword = "shared-pw"\n')
    with pytest.raises(TemplateError, match=r"model template 'T42' sets lines\[0\].password"):
        render(fleet, tmp_path / "tree")
    assert not (tmp_path / "tree" / "T42.toml").exists()
    fleet.set_model_template("T42", "")
    fleet.set_common('[api]\ntoken = "tok"\n')
    report = render(fleet, tmp_path / "tree")
    assert report.warnings == ["common.toml sets api.token in clear: every phone, and anyone "
                               "who can fetch the file, can read it"]


def test_bad_provisioning_table_is_refused(fleet: Inventory, tmp_path: Path) -> None:
    fleet.set_common('[_provisioning]\nlock = "device.language"\n')
    with pytest.raises(TemplateError, match=r"common.toml: _provisioning.lock must be a list"):
        render(fleet, tmp_path / "tree")


def test_second_render_rewrites_nothing(fleet: Inventory, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    render(fleet, out)
    before, contents = stamps(out), tree_files(out)
    report = render(fleet, out)
    assert report.written == [] and report.removed == [] and report.errors == {}
    assert sorted(report.unchanged) == sorted(before)
    assert stamps(out) == before  # same inode and mtime: not replaced, not touched
    assert tree_files(out) == contents


def test_one_change_rewrites_one_file_and_the_index(fleet: Inventory, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    render(fleet, out)
    fleet.set_line(MAC_C, 1, "1003", "", label="Lobby")
    report = render(fleet, out)
    assert report.written == [f"{MAC_C}.toml", "index.json"]


def test_randomised_encryption_still_counts_as_unchanged(fleet: Inventory,
                                                         tmp_path: Path) -> None:
    def random_encrypt(body: bytes, key: str) -> bytes:
        return fake_encrypt(body, key) + b"#" + os.urandom(8).hex().encode()

    out = tmp_path / "tree"
    render(fleet, out, encryptor=random_encrypt)
    before = stamps(out)
    assert render(fleet, out, encryptor=random_encrypt).written == []
    assert stamps(out) == before

    fleet.set_line(MAC_A, 1, "1001", "Alpha-pw-NEW")
    assert render(fleet, out, encryptor=random_encrypt).written == [f"{MAC_A}.toml",
                                                                     "index.json"]

    def other_signer(body: bytes) -> bytes:  # a new signing key re-signs everything
        return b"#other\n" + body

    report = render(fleet, out, encryptor=random_encrypt, signer=other_signer)
    assert report.unchanged == []


def test_device_key_the_encryptor_refuses_is_an_error(fleet: Inventory, tmp_path: Path) -> None:
    def picky_encrypt(body: bytes, key: str) -> bytes:
        if key == "KEY-D":
            raise ValueError("not an X25519 public key")
        return fake_encrypt(body, key)

    report = render(fleet, tmp_path / "tree", encryptor=picky_encrypt)
    assert report.errors == {
        MAC_D: f"{MAC_D}: cannot encrypt for the device key: not an X25519 public key"}
    assert not (tmp_path / "tree" / f"{MAC_D}.toml").exists()
    assert decrypt((tmp_path / "tree" / f"{MAC_A}.toml").read_bytes())[0] == "KEY-A"


def test_index_lists_every_file_with_sha256_and_size(fleet: Inventory, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    render(fleet, out)
    index = json.loads((out / "index.json").read_bytes())
    assert index["version"] == 1
    files = tree_files(out)
    del files["index.json"]
    assert [entry["name"] for entry in index["files"]] == sorted(files)
    for entry in index["files"]:
        data = files[entry["name"]]
        assert entry == {"name": entry["name"], "sha256": hashlib.sha256(data).hexdigest(),
                         "size": len(data)}


def test_removed_device_and_model_files_are_deleted(fleet: Inventory, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    render(fleet, out)
    (out / "notes.txt").write_text("not ours")
    fleet.remove_device(MAC_D)  # the only T48
    report = render(fleet, out)
    assert sorted(report.removed) == sorted([f"{MAC_D}.toml", "T48.toml"])
    assert not (out / f"{MAC_D}.toml").exists() and not (out / "T48.toml").exists()
    assert (out / "notes.txt").read_text() == "not ours"  # never listed, never touched


def test_site_value_clashing_with_builtin_is_refused(fleet: Inventory, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"clashes with the built-in \$\{mac\}"):
        render(fleet, tmp_path / "tree", site={"mac": "x"})


def test_render_2000_devices(inventory: Inventory, tmp_path: Path) -> None:
    inventory.set_common(COMMON)
    inventory.set_model_template("T42", MODEL_T42)
    for i in range(2000):
        mac = inventory.add_device(f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}", "T42",
                                   f"Phone {i}", public_key=f"KEY-{i}" if i % 2 else "")
        inventory.set_line(mac, 1, str(10000 + i), f"secret-{i}-pw")
    started = time.perf_counter()
    report = render(inventory, tmp_path / "tree")
    print(f"\nrendered 2000 devices in {report.seconds:.2f} s "
          f"({time.perf_counter() - started:.2f} s wall)")
    assert report.errors == {}
    assert len(report.written) == 2000 + 3  # common, T42, index
    assert len(report.withheld) == 1000


# --- command line -----------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], db: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--db", str(db), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_add_list_set_line_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "inv.db"
    assert run(capsys, db, "add-device", "00:1A:2B:3C:4D:5E", "T42", "--name", "Reception",
               "--public-key", "KEY-A", "--secret", "dev-secret") == (
        0, f"added {MAC_A} (T42)\n", "")
    code, out, _ = run(capsys, db, "set-line", MAC_A, "1", "1001", "Sup3r-Secret",
                       "--display-name", "Anna", "--registrar", "pbx.example.se")
    assert code == 0 and out == f"set line 1 of {MAC_A}\n"
    code, out, err = run(capsys, db, "list")
    assert code == 0 and err == ""
    assert "Sup3r-Secret" not in out and "dev-secret" not in out
    assert out.splitlines() == [
        f'{MAC_A}  T42  "Reception"  key: yes  cert: no  secret: ****',
        '  line 1  user "1001"  password ****  registrar pbx.example.se  '
        'display_name "Anna"  label ""',
        "1 device(s)"]
    assert run(capsys, db, "remove-device", "00-1a-2b-3c-4d-5e") == (
        0, "removed 00-1a-2b-3c-4d-5e\n", "")
    assert run(capsys, db, "list") == (0, "0 device(s)\n", "")


def test_cli_errors_exit_2_with_one_line(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "inv.db"
    assert run(capsys, db, "add-device", MAC_A, "T42")[0] == 0
    cases = [
        ("add-device", MAC_A, "T42"),  # duplicate
        ("add-device", "00:1a:2b", "T42"),  # bad MAC
        ("set-line", MAC_B, "1", "1001", "pw"),  # unknown device
        ("set-line", MAC_A, "one", "1001", "pw"),  # not a number
        ("remove-device", MAC_B),
        ("set-model", "T42", str(tmp_path / "missing.toml")),
        ("frobnicate",),
    ]
    for argv in cases:
        code, out, err = run(capsys, db, *argv)
        assert code == 2, argv
        assert out == "" and err.count("\n") == 1 and err.startswith(
            "provisioning.server.cli: "), (argv, err)
    assert "already in the inventory" in run(capsys, db, "add-device", MAC_A, "T42")[2]


def test_cli_templates_and_stdin_password(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "inv.db"
    (tmp_path / "t42.toml").write_text(MODEL_T42)
    (tmp_path / "common.toml").write_text(COMMON)
    assert run(capsys, db, "set-model", "T42", str(tmp_path / "t42.toml"))[0] == 0
    assert run(capsys, db, "set-common", str(tmp_path / "common.toml"))[0] == 0
    assert run(capsys, db, "add-device", MAC_A, "T42")[0] == 0
    done = subprocess.run(
        [sys.executable, "-m", "provisioning.server.cli", "--db", str(db), "set-line", MAC_A,
         "1", "1001", "-"], input="from-stdin\n", capture_output=True, text=True, timeout=30,
        cwd=Path(__file__).resolve().parents[2], check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"set line 1 of {MAC_A}\n", "")
    with Inventory(db) as inv:
        assert inv.model_templates() == {"T42": MODEL_T42} and inv.common() == COMMON
        device = inv.device(MAC_A)
        assert device is not None and device.lines[0].password == "from-stdin"


def test_cli_publish_signs_and_encrypts_for_each_phone(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import base64

    from cryptography.hazmat.primitives import serialization

    from provisioning.signing import (
        decrypt_for_device,
        generate_device_key,
        generate_key,
        load_device_private_key,
        load_public_keys,
        verify,
    )

    _, site_pub = generate_key(tmp_path / "keys", "site")
    device_priv, device_pub = generate_device_key(tmp_path / "phone", "device")
    raw = serialization.load_pem_public_key(device_pub.read_bytes()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    (tmp_path / "common.toml").write_text('[device]\nlanguage = "sv"\n')
    (tmp_path / "sim.toml").write_text('[device]\ntone_country = "se"\n')
    db = ["--db", str(tmp_path / "inv.db")]
    assert main([*db, "set-common", str(tmp_path / "common.toml")]) == 0
    assert main([*db, "set-model", "sim", str(tmp_path / "sim.toml")]) == 0
    assert main([*db, "add-device", "02:00:00:00:10:01", "sim",
                 "--public-key", base64.b64encode(raw).decode()]) == 0
    assert main([*db, "set-line", "020000001001", "1", "1001", "pw-secret",
                 "--registrar", "127.0.0.1:5060"]) == 0
    out = tmp_path / "tree"
    assert main([*db, "publish", str(out), "--sign-key", str(tmp_path / "keys" / "site.key")]) == 0
    data = (out / "020000001001.toml").read_bytes()
    assert b"pw-secret" not in data
    _, body = verify(data, load_public_keys([site_pub]))
    clear = decrypt_for_device(body, load_device_private_key(device_priv))
    assert tomllib.loads(clear.decode())["lines"][0]["password"] == "pw-secret"
    assert ", 0 withheld," in capsys.readouterr().out
