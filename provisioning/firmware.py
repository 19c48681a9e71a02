"""A/B firmware slots with automatic rollback: the simulator's bootloader and updater.

A phone has two firmware slots, ``a`` and ``b``, each a directory under a root::

    <root>/boot.json          the boot-control record (a real bootloader keeps it in its env)
    <root>/slots/a            one complete firmware tree, with its luren-manifest.json
    <root>/slots/b            the other one
    <root>/slots/<x>.new      only while an image is being written into slot x
    <root>/slots/<x>.old      only while slot x's previous tree is being deleted

``boot.json`` holds ``{"active": "a"|"b", "pending": null|"a"|"b", "tries_left": int,
"slots": {"a": {"version": str, "state": str}, "b": {...}}}``. A slot's state is ``good``
(it ran and was confirmed), ``bad`` (it failed to come up), ``empty``, ``installing`` (an image
is being written into it) or ``installed`` (written and checked, not yet tried).

An update goes: ``install(image)`` writes the image into the slot that is *not* active;
``switch_on_reboot()`` makes that slot ``pending`` with ``max_tries`` attempts; at power-on
``boot()`` picks the pending slot and counts one attempt down *before* it runs, and the runtime
calls ``mark_healthy()`` once the lines are registered, which makes the pending slot the active
one. A slot that is booted ``max_tries`` times without being confirmed is marked ``bad`` and the
next boot runs the old active slot again.

How this maps to real bootloaders:

* U-Boot + RAUC: ``boot.json`` stands for the U-Boot environment. ``BOOT_ORDER`` ("B A") lists
  the slots by priority and ``BOOT_<x>_LEFT`` counts the attempts left; the boot script takes
  the first slot in ``BOOT_ORDER`` with attempts left, decrements its counter, saves the
  environment, then boots it with ``rauc.slot=<x>`` on the kernel command line, so a slot whose
  counter reaches 0 is skipped and the next one in the order boots (the rollback). Here the
  pending slot is the one RAUC put first in ``BOOT_ORDER`` after ``rauc install`` (with
  ``BOOT_<x>_LEFT=3``: ``tries_left``); ``active`` is the next one. ``mark_healthy()`` is
  ``rauc status mark-good`` run after the health check (RAUC then resets the booted slot's
  counter); ``bad`` is ``BOOT_<x>_LEFT=0`` (``rauc status mark-bad``); ``rollback()`` is
  ``rauc status mark-active other``. The version of each slot is what RAUC records in its slot
  status file (``statusfile=`` in system.conf).
* Raspberry Pi ``tryboot``: with ``tryboot_a_b=1`` in ``autoboot.txt`` on the first FAT
  partition, ``[all] boot_partition=2`` is the active slot and ``[tryboot] boot_partition=3``
  the pending one; ``reboot "0 tryboot"`` sets a one-shot flag the firmware clears before it
  starts the tried partition, so exactly one try is made (``max_tries=1``; a hardware watchdog
  must reset a hung try), and any later reset boots the old partition. ``mark_healthy()`` is the
  updated OS rewriting ``autoboot.txt`` (atomically) so ``[all] boot_partition`` names the new
  partition.

Power cuts: at any point of ``install``, ``switch_on_reboot``, ``boot``, ``mark_healthy``,
``rollback`` and ``repair``, a kill -9 leaves (1) ``boot.json`` readable, old or new but never
torn (every change is one atomic replace: temporary file, fsync, rename, fsync of the
directory); (2) the active slot intact and bootable (nothing ever writes into it; ``boot()``
returns a slot that is active, or pending, and a slot only becomes pending after its tree was
written, fsynced, renamed into place, and checked); (3) nothing outside ``<root>`` touched (the
data partition). A slot left ``installing`` or a leftover ``.new``/``.old`` directory is cleaned
up by ``repair()``, which the phone calls at start.

Image format: a tar archive (plain or gzip) of the firmware tree plus ``luren-manifest.json``
``{"version": "1.2.3", "files": {"relative/path": "<sha256 hex>"}}`` at its top, wrapped in
the Ed25519 envelope of ``provisioning.signing`` (the signature covers the tar bytes). Only
plain files and directories are accepted; absolute paths, ``..``, links and devices are refused.
The manifest is written into the slot with the tree, so a slot can be checked at any time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware.storage import atomic_write_json
from provisioning import signing

SLOT_NAMES: Final = ("a", "b")
STATES: Final = ("good", "bad", "empty", "installing", "installed")
MANIFEST_NAME: Final = "luren-manifest.json"
BOOT_FILE: Final = "boot.json"
FACTORY_VERSION: Final = "0.0.0-factory"
DEFAULT_MAX_BYTES: Final = 256 * 2**20
UNPACK_FACTOR: Final = 4
"""The unpacked tree may be at most this many times the largest image accepted."""
MAX_MANIFEST_BYTES: Final = 4 * 2**20
MAX_MEMBERS: Final = 100_000
_UNLIMITED: Final = 2**63  # signing's own limit is for config files; install() checks max_bytes

_VERSION_RE: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+~-]{0,63}")
_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_CHUNK: Final = 1 << 20


class FirmwareError(Exception):
    """A firmware image or slot operation was refused; the message says why in plain words."""


@dataclass(frozen=True)
class SlotInfo:
    """One slot as recorded in boot.json (version is "" for an empty slot)."""

    name: str
    version: str
    state: str


@dataclass(frozen=True)
class BootState:
    """The boot-control record."""

    active: str
    pending: str | None
    tries_left: int
    slots: dict[str, SlotInfo]


# --- signed envelope -------------------------------------------------------------------------
# The envelope is exactly that of provisioning.signing (signing.verify accepts a small image),
# but signing.sign/verify stop at signing.MAX_FILE_BYTES (1 MiB, meant for config files), far
# below a firmware image, so the size limit is the caller's here.


def sign_image(body: bytes, key_id: str, key: Ed25519PrivateKey) -> bytes:
    """Wrap ``body`` in the signed envelope of provisioning.signing (no 1 MiB limit)."""
    return signing.sign(body, key_id, key, max_bytes=_UNLIMITED)


def verify_image(data: bytes, trusted: Mapping[str, Ed25519PublicKey]) -> tuple[str, bytes]:
    """Check a signed image against the trusted keys; return (key id, tar bytes) or raise."""
    try:
        return signing.verify(data, trusted, max_bytes=_UNLIMITED)
    except signing.SignatureError as exc:
        raise FirmwareError(f"the image is not signed by a trusted key: {exc}") from None


# --- image building and checking -------------------------------------------------------------


def _check_version(version: object) -> str:
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise FirmwareError(
            f"firmware version {version!r} is not allowed: use up to 64 letters, digits, "
            "'.', '_', '+', '~' or '-', starting with a letter or digit"
        )
    return version


def _relpath(name: str) -> str | None:
    """The archive member name as a clean relative path; None for the top directory itself."""
    if "\x00" in name or name.startswith("/"):
        raise FirmwareError(f"the image holds an absolute path {name!r} (path traversal)")
    parts = [part for part in PurePosixPath(name).parts if part != "."]
    if ".." in parts:
        raise FirmwareError(f"the image holds a path with '..' {name!r} (path traversal)")
    return "/".join(parts) or None


def _sha256_stream(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _parse_manifest(data: bytes) -> tuple[str, dict[str, str]]:
    """Parse and check a manifest; returns (version, {relpath: sha256})."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FirmwareError(f"{MANIFEST_NAME} is not valid JSON") from None
    if not isinstance(value, dict) or not isinstance(value.get("files"), dict):
        raise FirmwareError(f"{MANIFEST_NAME} must be an object with 'version' and 'files'")
    version = _check_version(value.get("version"))
    files: dict[str, str] = {}
    for name, digest in value["files"].items():
        clean = _relpath(name) if isinstance(name, str) else None
        if clean != name or name == MANIFEST_NAME:
            raise FirmwareError(f"{MANIFEST_NAME} lists {name!r}, which is not a plain file path")
        if not isinstance(digest, str) or not _SHA256_RE.fullmatch(digest):
            raise FirmwareError(f"{MANIFEST_NAME} gives no valid SHA-256 for file {name}")
        files[name] = digest
    return version, files


def _manifest_bytes(version: str, files: Mapping[str, str]) -> bytes:
    return (json.dumps({"version": version, "files": dict(files)}, indent=2, sort_keys=True)
            + "\n").encode()


def _compare(version: str, files: Mapping[str, str], found: Mapping[str, str]) -> str:
    """Compare {relpath: sha256} found against the manifest; returns the version or raises."""
    extra = sorted(set(found) - set(files))
    if extra:
        raise FirmwareError(f"file {extra[0]} is not listed in the manifest")
    missing = sorted(set(files) - set(found))
    if missing:
        raise FirmwareError(f"file {missing[0]} is listed in the manifest but missing")
    changed = sorted(name for name in files if found[name] != files[name])
    if changed:
        raise FirmwareError(f"file {changed[0]} does not match the manifest")
    return version


def build_image(source_dir: Path, version: str, key_id: str, key: Ed25519PrivateKey) -> bytes:
    """Pack ``source_dir`` (plain files and directories) with a manifest into a signed image."""
    _check_version(version)
    source_dir = Path(source_dir)
    files: dict[str, str] = {}
    paths: list[tuple[str, Path]] = []
    for path in sorted(source_dir.rglob("*")):
        rel = path.relative_to(source_dir).as_posix()
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise FirmwareError(f"{path} is not a plain file or directory")
        if rel == MANIFEST_NAME:
            raise FirmwareError(f"{path}: the name {MANIFEST_NAME} is reserved for the manifest")
        paths.append((rel, path))
        if path.is_file():
            with path.open("rb") as fh:
                files[rel] = _sha256_stream(fh)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        manifest = _manifest_bytes(version, files)
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size, info.mode = len(manifest), 0o644
        tar.addfile(info, io.BytesIO(manifest))
        for rel, path in paths:
            info = tar.gettarinfo(str(path), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_file():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return sign_image(buffer.getvalue(), key_id, key)


@dataclass(frozen=True)
class _Image:
    """A checked image: its version, directories and files (relpath -> tar member)."""

    version: str
    dirs: tuple[str, ...]
    members: dict[str, tarfile.TarInfo]


def _open_tar(body: bytes) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FirmwareError(f"the image is not a readable tar archive: {exc}") from None


def _check_image(body: bytes, max_unpacked: int) -> _Image:
    """Check the archive in memory, before anything is written: members, manifest, hashes."""
    files: dict[str, tarfile.TarInfo] = {}
    dirs: set[str] = set()
    total = 0
    try:
        with _open_tar(body) as tar:
            for count, member in enumerate(tar):
                if count >= MAX_MEMBERS:
                    raise FirmwareError(f"the image holds more than {MAX_MEMBERS} entries")
                rel = _relpath(member.name)
                if member.issym() or member.islnk():
                    raise FirmwareError(
                        f"the image holds a link {member.name!r}; only plain files and "
                        "directories are allowed"
                    )
                if not (member.isreg() or member.isdir()):
                    raise FirmwareError(
                        f"the image holds a device or special file {member.name!r}; only plain "
                        "files and directories are allowed"
                    )
                if rel is None:
                    if member.isreg():
                        raise FirmwareError(f"the image holds a nameless file {member.name!r}")
                    continue
                if rel in files or (member.isreg() and rel in dirs):
                    raise FirmwareError(f"the image holds {rel} twice")
                if member.isdir():
                    dirs.add(rel)
                    continue
                total += member.size
                if total > max_unpacked:
                    raise FirmwareError(
                        f"the unpacked image is larger than the limit of {max_unpacked} bytes"
                    )
                files[rel] = member
            for rel in [*files, *dirs]:
                for parent in PurePosixPath(rel).parents:
                    if parent.as_posix() in files:
                        raise FirmwareError(f"the image holds {rel} inside the file {parent}")
            manifest = files.get(MANIFEST_NAME)
            if manifest is None:
                raise FirmwareError(f"the image holds no {MANIFEST_NAME}")
            if manifest.size > MAX_MANIFEST_BYTES:
                raise FirmwareError(f"{MANIFEST_NAME} is larger than {MAX_MANIFEST_BYTES} bytes")
            version, listed = _parse_manifest(_member_bytes(tar, manifest))
            found = {}
            for rel, member in files.items():
                if rel != MANIFEST_NAME:
                    with _member_stream(tar, member) as stream:
                        found[rel] = _sha256_stream(stream)
            _compare(version, listed, found)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise FirmwareError(f"the image is not a readable tar archive: {exc}") from None
    return _Image(version, tuple(sorted(dirs)), files)


@contextlib.contextmanager
def _member_stream(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[IO[bytes]]:
    stream = tar.extractfile(member)
    if stream is None:
        raise FirmwareError(f"cannot read {member.name!r} from the image")
    with stream:
        yield stream


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    with _member_stream(tar, member) as stream:
        return stream.read()


def check_tree(directory: Path) -> str:
    """Check a slot's tree against its own manifest (no extra, missing or changed file, no
    link or special file); returns the version or raises FirmwareError."""
    directory = Path(directory)
    try:
        version, listed = _parse_manifest((directory / MANIFEST_NAME).read_bytes())
    except OSError as exc:
        raise FirmwareError(f"{directory} has no readable {MANIFEST_NAME}: {exc}") from None
    found: dict[str, str] = {}
    for current, dirnames, filenames in os.walk(directory):
        base = Path(current)
        for name in [*dirnames, *filenames]:
            path = base / name
            rel = path.relative_to(directory).as_posix()
            if path.is_symlink():
                raise FirmwareError(f"{rel} in {directory} is a link")
            if name in dirnames:
                continue
            if not path.is_file():
                raise FirmwareError(f"{rel} in {directory} is not a plain file")
            if rel != MANIFEST_NAME:
                with path.open("rb") as fh:
                    found[rel] = _sha256_stream(fh)
    return _compare(version, listed, found)


# --- files on disk ---------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> bool:
    """Delete a directory tree (or a file or link) if it is there; True when it was."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    else:
        return False
    return True


def _extract(body: bytes, image: _Image, target: Path) -> None:
    """Write the checked image into the new directory ``target``; fsync every file and dir."""
    target.mkdir(mode=0o755)
    made = {target}
    for rel in image.dirs:
        (target / rel).mkdir(mode=0o755, parents=True, exist_ok=True)
    with _open_tar(body) as tar:
        for rel, member in image.members.items():
            path = target / rel
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            mode = 0o755 if member.mode & 0o111 else 0o644
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, "wb") as out, _member_stream(tar, member) as stream:
                shutil.copyfileobj(stream, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
    for current, _dirs, _files in os.walk(target):
        made.add(Path(current))
    for directory in sorted(made, key=lambda p: len(p.parts), reverse=True):
        _fsync_dir(directory)


def _other(slot: str) -> str:
    return "b" if slot == "a" else "a"


# --- slots -----------------------------------------------------------------------------------


class Slots:
    """The two firmware slots under ``root`` and their boot-control record."""

    def __init__(self, root: Path, *, max_tries: int = 3) -> None:
        """Open the slots; an empty (or missing) root gets slot a "good" at 0.0.0-factory."""
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self.root = Path(root)
        self.max_tries = max_tries
        self._slots_dir = self.root / "slots"
        self._boot_path = self.root / BOOT_FILE
        self._booted: str | None = None
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if not self._boot_path.exists():
                self._initialise()
            self._read()

    @property
    def booted(self) -> str | None:
        """The slot the last ``boot()`` of this object returned (None before it)."""
        return self._booted

    def slot_dir(self, name: str) -> Path:
        """The directory of slot ``name``."""
        if name not in SLOT_NAMES:
            raise ValueError(f"there is no slot {name!r}")
        return self._slots_dir / name

    # -- boot.json ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise changes between processes (the kernel drops the lock if one is killed)."""
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> BootState:
        try:
            raw = json.loads(self._boot_path.read_bytes())
        except FileNotFoundError:
            raise FirmwareError(f"{self._boot_path} is missing") from None
        except (OSError, ValueError) as exc:
            raise FirmwareError(f"{self._boot_path} cannot be read: {exc}") from None
        try:
            return _boot_state(raw)
        except KeyError as exc:
            raise FirmwareError(f"{self._boot_path} is damaged: {exc} is missing") from None
        except (TypeError, ValueError) as exc:
            raise FirmwareError(f"{self._boot_path} is damaged: {exc}") from None

    def _write(self, state: BootState) -> None:
        atomic_write_json(self._boot_path, {
            "active": state.active,
            "pending": state.pending,
            "tries_left": state.tries_left,
            "slots": {name: {"version": info.version, "state": info.state}
                      for name, info in sorted(state.slots.items())},
        })

    @staticmethod
    def _with_slot(state: BootState, name: str, version: str, slot_state: str,
                   **changes: Any) -> BootState:
        slots = {**state.slots, name: SlotInfo(name, version, slot_state)}
        return replace(state, slots=slots, **changes)

    def _initialise(self) -> None:
        """Create slot a (factory, an empty tree with its manifest) and an empty slot b."""
        leftovers = [p.name for p in self.root.iterdir()
                     if p.name not in ("slots", ".lock") and not _is_boot_tmp(p)]
        if self._slots_dir.exists():
            for path in self._slots_dir.iterdir():
                inside = [p.name for p in path.iterdir()] if path.is_dir() else ["?"]
                if path.name not in ("a", "a.new", "b") or set(inside) - {MANIFEST_NAME}:
                    leftovers.append(f"slots/{path.name}")
        if leftovers:
            raise FirmwareError(
                f"{self._boot_path} is missing but {self.root} already holds "
                f"{', '.join(sorted(leftovers))}; not overwriting it (restore boot.json or "
                "empty the directory)"
            )
        self._slots_dir.mkdir(exist_ok=True)
        for name in ("a.new", "a", "b"):
            _remove(self._slots_dir / name)
        new = self._slots_dir / "a.new"
        new.mkdir(mode=0o755)
        fd = os.open(new / MANIFEST_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(_manifest_bytes(FACTORY_VERSION, {}))
            out.flush()
            os.fsync(out.fileno())
        _fsync_dir(new)
        os.rename(new, self._slots_dir / "a")
        (self._slots_dir / "b").mkdir(mode=0o755)
        _fsync_dir(self._slots_dir)
        _fsync_dir(self.root)
        self._write(BootState("a", None, 0, {
            "a": SlotInfo("a", FACTORY_VERSION, "good"), "b": SlotInfo("b", "", "empty"),
        }))

    # -- operations ---------------------------------------------------------------------------

    def state(self) -> BootState:
        """The boot-control record as it is on disk now."""
        return self._read()

    def install(self, image: bytes, trusted: Mapping[str, Ed25519PublicKey], *,
                max_bytes: int = DEFAULT_MAX_BYTES) -> SlotInfo:
        """Check a signed image and write it into the inactive slot; returns that slot."""
        if len(image) > max_bytes:
            raise FirmwareError(f"the image is {len(image)} bytes; the limit is {max_bytes} bytes")
        _key_id, body = verify_image(image, trusted)
        checked = _check_image(body, max_bytes * UNPACK_FACTOR)
        with self._lock():
            state = self._read()
            if state.pending is not None:
                raise FirmwareError(
                    f"slot {state.pending} (version {state.slots[state.pending].version}) is "
                    "waiting to be confirmed after a switch; confirm it, or cancel with "
                    "rollback(), before installing another image"
                )
            if checked.version == state.slots[state.active].version:
                raise FirmwareError(f"already running {checked.version}")
            target = _other(state.active)
            self._write(self._with_slot(state, target, checked.version, "installing"))
            slot_dir = self.slot_dir(target)
            new, old = slot_dir.with_name(f"{target}.new"), slot_dir.with_name(f"{target}.old")
            try:
                _remove(new)
                _remove(old)
                if slot_dir.exists() or slot_dir.is_symlink():
                    os.rename(slot_dir, old)  # aside first, so the slot is never half-deleted
                    _fsync_dir(self._slots_dir)
                    _remove(old)
                _extract(body, checked, new)
                if check_tree(new) != checked.version:
                    raise FirmwareError("the manifest written to the slot has another version")
                os.rename(new, slot_dir)
                _fsync_dir(self._slots_dir)
            except BaseException as exc:
                self._abandon(target)
                if isinstance(exc, OSError):
                    raise FirmwareError(f"writing slot {target} failed: {exc}") from exc
                raise
            info = SlotInfo(target, checked.version, "installed")
            self._write(self._with_slot(self._read(), target, info.version, info.state))
            return info

    def _abandon(self, name: str) -> None:
        """After a failed install: remove what was written and mark the slot empty."""
        with contextlib.suppress(OSError, FirmwareError):
            slot_dir = self.slot_dir(name)
            for path in (slot_dir.with_name(f"{name}.new"), slot_dir.with_name(f"{name}.old")):
                _remove(path)
            _remove(slot_dir)
            slot_dir.mkdir(mode=0o755)
            _fsync_dir(self._slots_dir)
            self._write(self._with_slot(self._read(), name, "", "empty"))

    def switch_on_reboot(self) -> None:
        """Make the newly installed inactive slot the one tried at the next boots."""
        with self._lock():
            state = self._read()
            if state.pending is not None:
                raise FirmwareError(f"a switch to slot {state.pending} is already waiting")
            target = _other(state.active)
            info = state.slots[target]
            if info.state != "installed":
                raise FirmwareError(
                    f"slot {target} holds no newly installed firmware (it is {info.state}); "
                    "install an image first"
                )
            self._check_slot(target, info)
            self._write(replace(state, pending=target, tries_left=self.max_tries))

    def _check_slot(self, name: str, info: SlotInfo) -> None:
        try:
            version = check_tree(self.slot_dir(name))
        except FirmwareError as exc:
            raise FirmwareError(f"slot {name} is damaged ({exc}); install it again") from None
        if version != info.version:
            raise FirmwareError(
                f"slot {name} holds version {version}, but boot.json says {info.version}"
            )

    def boot(self) -> str:
        """What the bootloader does at power-on; returns the slot to run."""
        with self._lock():
            state = self._read()
            pending = state.pending
            if pending is None:
                slot = state.active
            elif state.tries_left > 0:
                self._write(replace(state, tries_left=state.tries_left - 1))
                slot = pending
            else:
                version = state.slots[pending].version
                self._write(self._with_slot(state, pending, version, "bad",
                                            pending=None, tries_left=0))
                slot = state.active
            self._booted = slot
            return slot

    def mark_healthy(self, running: str | None = None) -> None:
        """Confirm the running slot (``running``, or what ``boot()`` returned); if it is the
        pending one it becomes active and "good". Idempotent."""
        slot = running if running is not None else self._booted
        if slot not in SLOT_NAMES:
            raise FirmwareError(
                "mark_healthy() needs the running slot (a or b): call boot() first")
        with self._lock():
            state = self._read()
            if state.pending is None or state.pending != slot:
                return
            self._write(self._with_slot(state, slot, state.slots[slot].version, "good",
                                        active=slot, pending=None, tries_left=0))

    def rollback(self) -> None:
        """Technician: cancel a switch still waiting to be confirmed (the next boot runs the
        active slot); otherwise switch to the other slot at the next boot if it is "good"."""
        with self._lock():
            state = self._read()
            if state.pending is not None:
                self._write(replace(state, pending=None, tries_left=0))
                return
            other = _other(state.active)
            info = state.slots[other]
            if info.state != "good":
                raise FirmwareError(
                    f"cannot roll back: slot {other} holds no known-good firmware "
                    f"(it is {info.state})"
                )
            self._check_slot(other, info)
            self._write(replace(state, pending=other, tries_left=self.max_tries))

    def repair(self) -> list[str]:
        """At start: finish or undo work a power cut interrupted; returns what it did."""
        done: list[str] = []
        with self._lock():
            for path in self.root.iterdir():
                if _is_boot_tmp(path):
                    path.unlink()
                    done.append(f"removed {path.name}, a half-written copy of {BOOT_FILE}")
            state = self._read()
            name = _other(state.active)  # the active slot is never touched
            info = state.slots[name]
            slot_dir = self.slot_dir(name)
            leftovers = [p for p in (slot_dir.with_name(f"{name}.new"),
                                     slot_dir.with_name(f"{name}.old"))
                         if p.exists() or p.is_symlink()]
            lost = info.state in ("installed", "good", "bad") and not (
                (slot_dir / MANIFEST_NAME).is_file())
            if info.state == "installing" or leftovers or lost:
                for path in [*leftovers, slot_dir]:
                    _remove(path)
                slot_dir.mkdir(mode=0o755)
                _fsync_dir(self._slots_dir)
                cancel = {"pending": None, "tries_left": 0} if state.pending == name else {}
                self._write(self._with_slot(state, name, "", "empty", **cancel))
                what = (f"an interrupted install of {info.version}" if info.state == "installing"
                        else f"leftovers of an install ({', '.join(p.name for p in leftovers)})"
                        if leftovers else f"version {info.version}, whose files are gone")
                done.append(f"slot {name}: cleaned up {what}; the slot is now empty")
            elif not slot_dir.is_dir():
                slot_dir.mkdir(mode=0o755)
                _fsync_dir(self._slots_dir)
                done.append(f"slot {name}: recreated its empty directory")
        return done


def _is_boot_tmp(path: Path) -> bool:
    """A temporary file firmware.storage.atomic_write left beside boot.json."""
    return path.name.startswith(f".{BOOT_FILE}.") and path.is_file()


def _boot_state(raw: Any) -> BootState:
    """Build a BootState from parsed boot.json; raises KeyError/TypeError/ValueError."""
    active, pending, tries = raw["active"], raw["pending"], raw["tries_left"]
    if active not in SLOT_NAMES:
        raise ValueError(f"active slot {active!r} is not a or b")
    if pending is not None and pending != _other(active):
        raise ValueError(f"pending slot {pending!r} is not the inactive slot")
    if not isinstance(tries, int) or isinstance(tries, bool) or tries < 0:
        raise ValueError(f"tries_left {tries!r} is not a count")
    slots = {}
    for name in SLOT_NAMES:
        entry = raw["slots"][name]
        version, slot_state = entry["version"], entry["state"]
        if not isinstance(version, str) or slot_state not in STATES:
            raise ValueError(f"slot {name} has version {version!r}, state {slot_state!r}")
        slots[name] = SlotInfo(name, version, slot_state)
    return BootState(active, pending, tries, slots)
