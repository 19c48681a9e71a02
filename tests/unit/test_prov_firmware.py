"""A/B firmware slots: real signed images, real files, a real worker killed with SIGKILL."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provisioning import signing
from provisioning.firmware import (
    FACTORY_VERSION,
    MANIFEST_NAME,
    BootState,
    FirmwareError,
    SlotInfo,
    Slots,
    build_image,
    check_tree,
    sign_image,
    verify_image,
)

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "harness" / "fwupdate_worker.py"
KEY_ID = "fw-test"


@dataclass(frozen=True)
class Keys:
    """A signing key pair on disk."""

    private: Ed25519PrivateKey
    trusted: dict[str, Ed25519PublicKey]
    public_path: Path


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    private_path, public_path = signing.generate_key(tmp_path / "keys", KEY_ID)
    _key_id, private = signing.load_private_key(private_path)
    return Keys(private, signing.load_public_keys([public_path]), public_path)


def _tree(directory: Path, version: str, *, size: int = 64, seed: int = 0) -> Path:
    """A small firmware tree whose contents depend on the version."""
    rng = random.Random(f"{version}/{seed}")
    (directory / "bin").mkdir(parents=True)
    (directory / "lib" / "luren").mkdir(parents=True)
    (directory / "bin" / "phone").write_text(f"#!/bin/sh\necho {version}\n")
    (directory / "bin" / "phone").chmod(0o755)
    (directory / "lib" / "luren" / "core.bin").write_bytes(rng.randbytes(size))
    (directory / "lib" / "luren" / "tones.bin").write_bytes(rng.randbytes(size))
    (directory / "VERSION").write_text(version + "\n")
    return directory


def _image(tmp_path: Path, keys: Keys, version: str, **kwargs: int) -> bytes:
    return build_image(_tree(tmp_path / f"src-{version}", version, **kwargs), version, KEY_ID,
                       keys.private)


def _snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything under root: type, inode, and for files mtime and content."""
    seen: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        info = path.lstat()
        if path.is_symlink():
            seen[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            seen[rel] = ("dir", info.st_ino)
        else:
            seen[rel] = ("file", info.st_ino, info.st_mtime_ns, path.read_bytes())
    return seen


def _member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE,
            linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    return info, data


def _manifest(version: str, files: dict[str, bytes]) -> tuple[tarfile.TarInfo, bytes]:
    listed = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    return _member(MANIFEST_NAME, json.dumps({"version": version, "files": listed}).encode())


def _signed_tar(members: list[tuple[tarfile.TarInfo, bytes]], keys: Keys) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return sign_image(buffer.getvalue(), KEY_ID, keys.private)


def _updated(tmp_path: Path, keys: Keys, version: str = "1.0.0") -> Slots:
    """Slots with ``version`` installed into b, booted and confirmed (b active, a factory)."""
    slots = Slots(tmp_path / "fw")
    slots.install(_image(tmp_path, keys, version), keys.trusted)
    slots.switch_on_reboot()
    assert slots.boot() == "b"
    slots.mark_healthy()
    return slots


# --- the happy path ----------------------------------------------------------------------------


def test_a_new_root_starts_on_the_factory_slot(tmp_path: Path) -> None:
    slots = Slots(tmp_path / "fw")
    assert slots.state() == BootState("a", None, 0, {
        "a": SlotInfo("a", FACTORY_VERSION, "good"), "b": SlotInfo("b", "", "empty")})
    assert check_tree(slots.slot_dir("a")) == FACTORY_VERSION
    assert slots.boot() == "a"
    assert json.loads((tmp_path / "fw" / "boot.json").read_text())["active"] == "a"
    assert Slots(tmp_path / "fw").state() == slots.state()  # opening again changes nothing


def test_install_switch_boot_and_confirm(tmp_path: Path, keys: Keys) -> None:
    slots = Slots(tmp_path / "fw")
    factory = _snapshot(slots.slot_dir("a"))
    info = slots.install(_image(tmp_path, keys, "1.2.3"), keys.trusted)
    assert info == SlotInfo("b", "1.2.3", "installed")
    slot_b = slots.slot_dir("b")
    assert (slot_b / "VERSION").read_text() == "1.2.3\n"
    assert (slot_b / "lib" / "luren" / "core.bin").read_bytes() == (
        tmp_path / "src-1.2.3" / "lib" / "luren" / "core.bin").read_bytes()
    assert os.access(slot_b / "bin" / "phone", os.X_OK)
    assert check_tree(slot_b) == "1.2.3"
    assert slots.state().pending is None  # installing alone changes nothing at boot
    assert slots.boot() == "a"

    slots.switch_on_reboot()
    assert (slots.state().pending, slots.state().tries_left) == ("b", 3)
    assert slots.boot() == "b"
    assert slots.state().tries_left == 2
    slots.mark_healthy()
    state = slots.state()
    assert (state.active, state.pending, state.slots["b"]) == ("b", None, SlotInfo("b", "1.2.3",
                                                                                   "good"))
    assert state.slots["a"] == SlotInfo("a", FACTORY_VERSION, "good")  # kept for a rollback
    slots.mark_healthy()  # idempotent
    assert slots.state() == state
    assert Slots(tmp_path / "fw").boot() == "b"
    assert _snapshot(slots.slot_dir("a")) == factory  # the old active slot was never touched


def test_three_unconfirmed_boots_roll_back(tmp_path: Path, keys: Keys) -> None:
    slots = Slots(tmp_path / "fw")
    slots.install(_image(tmp_path, keys, "2.0.0"), keys.trusted)
    slots.switch_on_reboot()
    for left in (2, 1, 0):
        assert Slots(tmp_path / "fw").boot() == "b"  # a fresh power-on each time
        assert slots.state().tries_left == left
    rebooted = Slots(tmp_path / "fw")
    assert rebooted.boot() == "a"
    state = slots.state()
    assert (state.active, state.pending) == ("a", None)
    assert state.slots["b"] == SlotInfo("b", "2.0.0", "bad")
    rebooted.mark_healthy()  # running the old slot: nothing to confirm
    assert slots.state() == state
    with pytest.raises(FirmwareError, match="no newly installed firmware"):
        slots.switch_on_reboot()
    assert slots.install(_image(tmp_path, keys, "2.0.1"), keys.trusted).name == "b"


def test_confirming_needs_to_know_the_running_slot(tmp_path: Path, keys: Keys) -> None:
    slots = Slots(tmp_path / "fw")
    slots.install(_image(tmp_path, keys, "1.0.0"), keys.trusted)
    slots.switch_on_reboot()
    with pytest.raises(FirmwareError, match="call boot"):
        slots.mark_healthy()
    slots.mark_healthy("a")  # the old slot runs: the switch is not confirmed
    assert slots.state().pending == "b"
    slots.mark_healthy("b")  # what a separate runtime process that knows its slot does
    assert slots.state().active == "b"


# --- refused images ----------------------------------------------------------------------------


def _forged(image: bytes, keys: Keys, tmp_path: Path, how: str) -> bytes:
    _key_id, body = verify_image(image, keys.trusted)
    if how == "unsigned":
        return body
    if how == "tampered":
        header, _, rest = image.partition(b"\n")
        return header + b"\n" + rest[:-1] + bytes([rest[-1] ^ 1])
    if how == "other key, same name":
        return sign_image(body, KEY_ID, Ed25519PrivateKey.generate())
    assert how == "untrusted key name"
    return sign_image(body, "someone-else", Ed25519PrivateKey.generate())


@pytest.mark.parametrize("how", ["unsigned", "tampered", "other key, same name",
                                 "untrusted key name"])
def test_an_image_not_signed_by_a_trusted_key_writes_nothing(tmp_path: Path, keys: Keys,
                                                              how: str) -> None:
    slots = _updated(tmp_path, keys)
    before = _snapshot(tmp_path / "fw")
    image = _forged(_image(tmp_path, keys, "1.1.0"), keys, tmp_path, how)
    with pytest.raises(FirmwareError, match="not signed by a trusted key"):
        slots.install(image, keys.trusted)
    assert _snapshot(tmp_path / "fw") == before


def _bad_archive(case: str) -> list[tuple[tarfile.TarInfo, bytes]]:
    good = {"bin/phone": b"#!/bin/sh\n", "VERSION": b"3.0.0\n"}
    files = [_member(name, data) for name, data in good.items()]
    if case == "manifest mismatch":
        return [_manifest("3.0.0", {**good, "VERSION": b"3.0.1\n"}), *files]
    if case == "extra file":
        return [_manifest("3.0.0", good), *files, _member("bin/backdoor", b"x")]
    if case == "missing file":
        return [_manifest("3.0.0", {**good, "lib/needed.so": b"y"}), *files]
    if case == "no manifest":
        return files
    if case == "file twice":
        return [_manifest("3.0.0", good), *files, _member("VERSION", b"3.0.0\n")]
    evil = {
        "parent path": _member("../evil", b"x"),
        "nested parent path": _member("bin/../../evil", b"x"),
        "absolute path": _member("/tmp/evil", b"x"),
        "symlink": _member("bin/evil", kind=tarfile.SYMTYPE, linkname="/etc/passwd"),
        "hard link": _member("bin/evil", kind=tarfile.LNKTYPE, linkname="VERSION"),
        "device": _member("dev-evil", kind=tarfile.CHRTYPE),
        "fifo": _member("fifo-evil", kind=tarfile.FIFOTYPE),
    }[case]
    return [_manifest("3.0.0", good), *files, evil]


@pytest.mark.parametrize(("case", "message"), [
    ("manifest mismatch", "file VERSION does not match the manifest"),
    ("extra file", "file bin/backdoor is not listed in the manifest"),
    ("missing file", "file lib/needed.so is listed in the manifest but missing"),
    ("no manifest", f"holds no {MANIFEST_NAME}"),
    ("file twice", "holds VERSION twice"),
    ("parent path", "path traversal"),
    ("nested parent path", "path traversal"),
    ("absolute path", "path traversal"),
    ("symlink", "holds a link"),
    ("hard link", "holds a link"),
    ("device", "device or special file"),
    ("fifo", "device or special file"),
])
def test_a_bad_archive_is_refused_and_the_active_slot_untouched(tmp_path: Path, keys: Keys,
                                                                 case: str, message: str) -> None:
    slots = _updated(tmp_path, keys)  # b active with 1.0.0; the install would go to a
    before = _snapshot(tmp_path)
    with pytest.raises(FirmwareError, match=message):
        slots.install(_signed_tar(_bad_archive(case), keys), keys.trusted)
    assert _snapshot(tmp_path) == before  # checked in memory: nothing at all was written
    assert check_tree(slots.slot_dir("b")) == "1.0.0"
    assert slots.boot() == "b"
    assert not list(tmp_path.parent.rglob("*evil*"))


def test_the_signed_envelope_is_that_of_provisioning_signing(tmp_path: Path, keys: Keys) -> None:
    image = _image(tmp_path, keys, "1.0.0")
    key_id, body = signing.verify(image, keys.trusted)  # small: the config verifier takes it
    assert key_id == KEY_ID
    assert sign_image(body, KEY_ID, keys.private) == signing.sign(body, KEY_ID, keys.private)
    assert verify_image(image, keys.trusted) == (KEY_ID, body)


def test_an_image_larger_than_config_files_installs(tmp_path: Path, keys: Keys) -> None:
    image = _image(tmp_path, keys, "4.0.0", size=700_000)  # random: does not compress
    assert len(image) > signing.MAX_FILE_BYTES
    slots = Slots(tmp_path / "fw")
    assert slots.install(image, keys.trusted).version == "4.0.0"
    assert check_tree(slots.slot_dir("b")) == "4.0.0"


def test_an_oversize_image_is_refused(tmp_path: Path, keys: Keys) -> None:
    slots = _updated(tmp_path, keys)
    before = _snapshot(tmp_path / "fw")
    image = _image(tmp_path, keys, "1.1.0")
    with pytest.raises(FirmwareError, match=f"the image is {len(image)} bytes; the limit"):
        slots.install(image, keys.trusted, max_bytes=len(image) - 1)
    zeros = {"zeros.bin": bytes(2_000_000)}  # a few KB packed: a decompression bomb in small
    bomb = _signed_tar([_manifest("1.2.0", zeros), _member("zeros.bin", zeros["zeros.bin"])],
                       keys)
    assert len(bomb) < 100_000
    with pytest.raises(FirmwareError, match="unpacked image is larger"):
        slots.install(bomb, keys.trusted, max_bytes=100_000)
    assert _snapshot(tmp_path / "fw") == before
    assert slots.install(image, keys.trusted, max_bytes=len(image)).version == "1.1.0"


# --- versions, rollback, refusals --------------------------------------------------------------


def test_the_running_version_is_refused(tmp_path: Path, keys: Keys) -> None:
    slots = _updated(tmp_path, keys, "1.0.0")
    before = _snapshot(tmp_path / "fw")
    with pytest.raises(FirmwareError, match=r"already running 1\.0\.0"):
        slots.install(_image(tmp_path / "again", keys, "1.0.0"), keys.trusted)
    assert _snapshot(tmp_path / "fw") == before


def test_rollback_to_the_good_slot(tmp_path: Path, keys: Keys) -> None:
    slots = _updated(tmp_path, keys, "1.0.0")
    slots.rollback()
    assert (slots.state().pending, slots.state().tries_left) == ("a", 3)
    assert slots.boot() == "a"
    slots.mark_healthy()
    state = slots.state()
    assert (state.active, state.pending) == ("a", None)
    assert state.slots == {"a": SlotInfo("a", FACTORY_VERSION, "good"),
                           "b": SlotInfo("b", "1.0.0", "good")}
    slots.rollback()  # and forward again: 1.0.0 is good too
    assert slots.boot() == "b"
    slots.mark_healthy()
    assert slots.state().active == "b"


def test_rollback_cancels_a_switch_not_yet_confirmed(tmp_path: Path, keys: Keys) -> None:
    slots = Slots(tmp_path / "fw")
    with pytest.raises(FirmwareError, match=r"cannot roll back: slot b .*empty"):
        slots.rollback()
    slots.install(_image(tmp_path, keys, "1.0.0"), keys.trusted)
    with pytest.raises(FirmwareError, match=r"cannot roll back: slot b .*installed"):
        slots.rollback()
    slots.switch_on_reboot()
    assert slots.boot() == "b"
    with pytest.raises(FirmwareError, match="waiting to be confirmed"):
        slots.install(_image(tmp_path, keys, "1.0.1"), keys.trusted)
    with pytest.raises(FirmwareError, match="already waiting"):
        slots.switch_on_reboot()
    slots.rollback()
    slots.mark_healthy()  # the new slot came up, but the technician cancelled: no effect
    assert slots.state().pending is None
    assert slots.boot() == "a"
    assert slots.state().slots["b"] == SlotInfo("b", "1.0.0", "installed")


def test_a_damaged_installed_slot_is_not_switched_to(tmp_path: Path, keys: Keys) -> None:
    slots = Slots(tmp_path / "fw")
    slots.install(_image(tmp_path, keys, "1.0.0"), keys.trusted)
    (slots.slot_dir("b") / "VERSION").write_text("changed\n")
    with pytest.raises(FirmwareError, match=r"slot b is damaged .*VERSION does not match"):
        slots.switch_on_reboot()
    assert slots.state().pending is None


def test_a_root_with_files_but_no_boot_record_is_not_overwritten(tmp_path: Path) -> None:
    root = tmp_path / "fw"
    (root / "slots" / "b").mkdir(parents=True)
    (root / "slots" / "b" / "phone").write_text("precious")
    with pytest.raises(FirmwareError, match=r"boot\.json is missing .*not overwriting"):
        Slots(root)
    assert (root / "slots" / "b" / "phone").read_text() == "precious"


def test_a_first_start_cut_short_starts_again(tmp_path: Path) -> None:
    root = tmp_path / "fw"
    (root / "slots" / "a.new").mkdir(parents=True)  # what a kill -9 inside Slots() leaves
    (root / "slots" / "a.new" / MANIFEST_NAME).write_text('{"vers')
    (root / ".boot.json.abc123").write_text("")
    slots = Slots(root)
    assert slots.state().slots["a"] == SlotInfo("a", FACTORY_VERSION, "good")
    assert check_tree(slots.slot_dir("a")) == FACTORY_VERSION
    assert sorted(p.name for p in (root / "slots").iterdir()) == ["a", "b"]


def test_a_damaged_boot_record_is_reported_in_plain_words(tmp_path: Path) -> None:
    Slots(tmp_path / "fw")
    (tmp_path / "fw" / "boot.json").write_text('{"active": "c", "pending": null}')
    with pytest.raises(FirmwareError, match=r"boot\.json is damaged"):
        Slots(tmp_path / "fw")


def test_repair_cleans_an_interrupted_install(tmp_path: Path, keys: Keys) -> None:
    slots = _updated(tmp_path, keys, "1.0.0")  # b active, a factory
    record = json.loads((tmp_path / "fw" / "boot.json").read_text())
    record["slots"]["a"] = {"version": "1.1.0", "state": "installing"}
    (tmp_path / "fw" / "boot.json").write_text(json.dumps(record))
    (slots.slot_dir("a").parent / "a.new" / "bin").mkdir(parents=True)
    (slots.slot_dir("a").parent / "a.new" / "bin" / "half").write_bytes(b"hal")
    (slots.slot_dir("a").parent / "a.old").mkdir()
    (tmp_path / "fw" / ".boot.json.x1y2z3").write_text('{"act')
    active = _snapshot(slots.slot_dir("b"))
    done = slots.repair()
    assert any("interrupted install of 1.1.0" in line for line in done)
    assert any(".boot.json.x1y2z3" in line for line in done)
    assert sorted(p.name for p in slots.slot_dir("a").parent.iterdir()) == ["a", "b"]
    assert list(slots.slot_dir("a").iterdir()) == []
    assert slots.state().slots["a"] == SlotInfo("a", "", "empty")
    assert _snapshot(slots.slot_dir("b")) == active
    assert slots.repair() == []
    assert slots.install(_image(tmp_path, keys, "1.1.0"), keys.trusted).name == "a"


# --- power cuts --------------------------------------------------------------------------------


def _check_after_power_cut(root: Path, keep: Path, keep_bytes: bytes
                           ) -> tuple[BootState, list[str]]:
    """What must hold after a kill -9 anywhere; returns the state after a power-on."""
    json.loads((root / "boot.json").read_text())  # readable before anyone repairs anything
    slots = Slots(root)
    done = slots.repair()
    running = slots.boot()
    state = slots.state()
    assert running in (state.active, state.pending)
    assert state.slots[state.active].state == "good"
    assert check_tree(slots.slot_dir(running)) == state.slots[running].version
    for name, info in state.slots.items():  # every slot that claims a tree has it whole
        if info.state != "empty":
            assert info.state != "installing"
            assert check_tree(slots.slot_dir(name)) == info.version
    assert sorted(p.name for p in (root / "slots").iterdir()) == ["a", "b"]
    assert keep.read_bytes() == keep_bytes
    assert sorted(p.name for p in root.parent.iterdir()) == ["data", "firmware"]
    assert [p.name for p in keep.parent.iterdir()] == ["keep.txt"]
    return state, done


@pytest.mark.timeout(60)
def test_kill_9_at_random_points_leaves_a_bootable_phone(tmp_path: Path, keys: Keys) -> None:
    root = tmp_path / "device" / "firmware"
    keep = root.parent / "data" / "keep.txt"
    keep.parent.mkdir(parents=True)
    keep_bytes = b"contacts, history, recordings: not the updater's business\n"
    keep.write_bytes(keep_bytes)
    images = []
    for version in ("2.0.1", "2.0.2"):
        path = tmp_path / f"{version}.img"
        path.write_bytes(_image(tmp_path, keys, version, size=16_384))
        images.append(path)
    Slots(root)
    rng = random.Random(0x5EED)
    actives: set[str] = set()
    repaired = 0
    for number in range(18):
        lines = rng.randint(1, 14)
        child = subprocess.Popen(
            [sys.executable, str(WORKER), str(root), str(images[0]), str(keys.public_path),
             str(images[1])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert child.stdout is not None and child.stderr is not None
        try:
            printed = [child.stdout.readline() for _ in range(lines)]
            # Killed right after the N-th line, the worker would always die at the very start
            # of a step; a random pause moves the kill anywhere into the next step (an install
            # takes some 20-60 ms). Nothing waits on the pause: any instant must be safe.
            time.sleep(rng.uniform(0.0, 0.05))
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        errors = child.stderr.read()
        child.stdout.close()
        child.stderr.close()
        assert all(printed), f"the worker stopped early: {printed} {errors}"
        state, done = _check_after_power_cut(root, keep, keep_bytes)
        actives.add(state.slots[state.active].version)
        repaired += bool(done)
        print(f"round {number}: killed after {lines} lines; active {state.active}, pending "
              f"{state.pending}, tries {state.tries_left}; repair: {done}")
    assert {"2.0.1", "2.0.2"} <= actives, actives  # updates went through between the kills
    assert repaired >= 1, "no kill landed inside an install: the test did not test much"
    print(f"active versions seen {sorted(actives)}; repairs needed in {repaired} of 18 rounds")
