"""Signed (and optionally per-device encrypted) provisioning files.

The provisioning server signs every config file it publishes with an Ed25519 key; the phone
holds the matching public keys and refuses any file that is unsigned, signed with a key it does
not trust, or changed after signing. A signed file ("envelope") is one header line, then the
body bytes unchanged::

    #luren-signed v1 key=<key_id> sig=<base64 of the 64-byte Ed25519 signature>\\n
    <body bytes>

The signature covers ``b"luren-signed v1\\n" + key_id + b"\\n" + body``, so a signature is only
valid together with the key id it was made for. Key ids match ``[A-Za-z0-9_.-]{1,64}``; key files
are ``<key_id>.key`` (PEM PKCS8, mode 0600) and ``<key_id>.pub`` (PEM SubjectPublicKeyInfo), and
the key id is the file name without the extension.

A file carrying secrets (SIP passwords) may also be encrypted for one phone, so it can be served
to anyone yet read only by that phone. The body is encrypted first and the result signed::

    #luren-encrypted v1 eph=<base64 32-byte ephemeral X25519 public key> nonce=<base64 12 bytes>\\n
    <ChaCha20-Poly1305 ciphertext with its 16-byte tag>

The key is HKDF-SHA256 (salt = ephemeral public key || device public key, raw bytes; info =
``b"luren-config v1"``) of the X25519 shared secret between the ephemeral key and the phone's
device key. There is no associated data.

Every failure raises ``SignatureError`` (``EncryptionError`` for decryption) with a message a
technician can act on.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAX_FILE_BYTES: Final = 1_048_576
"""Largest signed file accepted (or produced), header included."""

SIGNED_MAGIC: Final = b"#luren-signed "
ENCRYPTED_MAGIC: Final = b"#luren-encrypted "
HKDF_INFO: Final = b"luren-config v1"

_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_B64: Final = r"[A-Za-z0-9+/]+={0,2}"
_SIGNED_HEADER_RE: Final = re.compile(rf"#luren-signed v1 key=(\S+) sig=({_B64})")
_ENCRYPTED_HEADER_RE: Final = re.compile(rf"#luren-encrypted v1 eph=({_B64}) nonce=({_B64})")
_VERSION_RE: Final = re.compile(r"#luren-(?:signed|encrypted) (v\S*)")
_SIGNATURE_BYTES: Final = 64
_RAW_KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12


class SignatureError(ValueError):
    """A signed file or a key cannot be used; the message says why in plain words."""


class EncryptionError(SignatureError):
    """An encrypted body cannot be decrypted; the message says why in plain words."""


# --- keys ------------------------------------------------------------------------------------


def _check_key_id(key_id: str) -> None:
    if not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
        raise SignatureError(
            f"key name {key_id!r} is not allowed: use 1 to 64 letters, digits, '_', '.' or '-'"
        )


def _write_key_pair(directory: Path, name: str, private_pem: bytes, public_pem: bytes
                    ) -> tuple[Path, Path]:
    """Write ``<name>.key`` (0600) and ``<name>.pub`` (0644), never overwriting either."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / f"{name}.key"
    public_path = directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} already exists; not overwriting an existing key")
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    return private_path, public_path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (fails if it exists) and write ``data`` to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it; make it exact
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _private_pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _load_private(path: Path) -> object:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(
            f"{path} is not a usable private key file (expected an unencrypted PEM key): {exc}"
        ) from None


def _public_from_text(text: str, what: str) -> object:
    """Parse PEM (SubjectPublicKeyInfo) or base64 of the raw 32 bytes; return the key or bytes."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            return serialization.load_pem_public_key(stripped.encode("ascii"))
        except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
            raise SignatureError(f"{what} is not a readable PEM public key") from None
    raw = _b64decode(stripped)
    if raw is None or len(raw) != _RAW_KEY_BYTES:
        raise SignatureError(
            f"{what} is neither a PEM public key nor the base64 of a 32-byte raw key"
        )
    return raw


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def generate_key(directory: Path, key_id: str) -> tuple[Path, Path]:
    """Create a new Ed25519 signing key pair; returns (private key path, public key path)."""
    _check_key_id(key_id)
    key = Ed25519PrivateKey.generate()
    return _write_key_pair(directory, key_id, _private_pem(key), _public_pem(key.public_key()))


def load_private_key(path: Path) -> tuple[str, Ed25519PrivateKey]:
    """Load a signing key; its key id is the file name without the extension."""
    key_id = path.stem
    _check_key_id(key_id)
    key = _load_private(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path} is not an Ed25519 signing key")
    return key_id, key


def public_key_from_text(key_id: str, pem_or_base64: str) -> Ed25519PublicKey:
    """Parse a trusted public key given as PEM or as base64 of its raw 32 bytes."""
    _check_key_id(key_id)
    what = f"public key {key_id!r}"
    parsed = _public_from_text(pem_or_base64, what)
    if isinstance(parsed, bytes):
        return Ed25519PublicKey.from_public_bytes(parsed)
    if not isinstance(parsed, Ed25519PublicKey):
        raise SignatureError(f"{what} is not an Ed25519 key")
    return parsed


def load_public_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """Load trusted public key files; each key id is its file name without the extension."""
    keys: dict[str, Ed25519PublicKey] = {}
    origin: dict[str, Path] = {}
    for path in paths:
        key_id = path.stem
        if key_id in keys:
            raise SignatureError(
                f"two public key files are named {key_id!r}: {origin[key_id]} and {path}"
            )
        try:
            text = path.read_text(encoding="ascii")
        except UnicodeDecodeError:
            raise SignatureError(f"{path} is not a public key file (not text)") from None
        try:
            keys[key_id] = public_key_from_text(key_id, text)
        except SignatureError as exc:
            raise SignatureError(f"{path}: {exc}") from None
        origin[key_id] = path
    return keys


# --- signing ---------------------------------------------------------------------------------


def _signed_message(key_id: str, body: bytes) -> bytes:
    return b"luren-signed v1\n" + key_id.encode("ascii") + b"\n" + body


def sign(body: bytes, key_id: str, key: Ed25519PrivateKey, *,
         max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Return the signed file (header line + body) for ``body``. ``max_bytes``: config files
    stay under a megabyte; a firmware image passes its own limit."""
    _check_key_id(key_id)
    signature = key.sign(_signed_message(key_id, body))
    header = f"#luren-signed v1 key={key_id} sig={base64.b64encode(signature).decode()}\n"
    data = header.encode("ascii") + body
    if len(data) > max_bytes:
        raise SignatureError(
            f"the signed file would be {len(data)} bytes; the limit is {max_bytes} bytes"
        )
    return data


def is_signed(data: bytes) -> bool:
    """True when ``data`` starts like a signed file (it may still fail to verify)."""
    return data.startswith(SIGNED_MAGIC)


def _split_header(data: bytes, kind: str) -> tuple[str, bytes]:
    """Split off the first line; return it (as text, without the newline) and the rest."""
    end = data.find(b"\n")
    if end < 0:
        raise _error_for(kind, f"the {kind} file's first line does not end: no body follows")
    try:
        header = data[:end].decode("ascii")
    except UnicodeDecodeError:
        raise _error_for(kind, f"the {kind} file's first line is damaged (not plain text)") \
            from None
    if header.endswith("\r"):
        raise _error_for(
            kind, f"the {kind} file's first line ends in a Windows line break (CR LF): the file "
            "was converted after it was made; serve it unchanged (binary)"
        )
    version = _VERSION_RE.match(header)
    if version and version.group(1) != "v1":
        raise _error_for(
            kind, f"the file is {kind} with format {version.group(1)}; this phone reads only v1"
        )
    return header, data[end + 1:]


def _error_for(kind: str, message: str) -> SignatureError:
    return EncryptionError(message) if kind == "encrypted" else SignatureError(message)


def verify(data: bytes, trusted: Mapping[str, Ed25519PublicKey], *,
           max_bytes: int = MAX_FILE_BYTES) -> tuple[str, bytes]:
    """Check a signed file against the trusted keys; return (key id, body) or raise."""
    if len(data) > max_bytes:
        raise SignatureError(
            f"the file is {len(data)} bytes; the limit is {max_bytes} bytes"
        )
    if not is_signed(data):
        raise SignatureError(
            "the file is not signed (it does not start with '#luren-signed'); "
            "this phone only accepts signed provisioning files"
        )
    header, body = _split_header(data, "signed")
    match = _SIGNED_HEADER_RE.fullmatch(header)
    if match is None:
        raise SignatureError(
            "the signature line is malformed; expected "
            "'#luren-signed v1 key=<key name> sig=<base64 signature>'"
        )
    key_id, sig_text = match.groups()
    if not _KEY_ID_RE.fullmatch(key_id):
        raise SignatureError(
            f"the signature line is malformed: key name {key_id!r} is not allowed"
        )
    signature = _b64decode(sig_text)
    if signature is None or len(signature) != _SIGNATURE_BYTES:
        raise SignatureError("the signature line is malformed: the signature is not 64 bytes")
    public = trusted.get(key_id)
    if public is None:
        known = ", ".join(sorted(trusted)) or "none"
        raise SignatureError(
            f"the file is signed with key {key_id!r}, which this phone does not trust "
            f"(trusted keys: {known})"
        )
    try:
        public.verify(signature, _signed_message(key_id, body))
    except InvalidSignature:
        raise SignatureError(
            f"bad signature: the file was changed after it was signed, or it was not signed "
            f"with the trusted key {key_id!r}"
        ) from None
    return key_id, body


# --- per-device encryption -------------------------------------------------------------------


def generate_device_key(directory: Path, name: str) -> tuple[Path, Path]:
    """Create a phone's X25519 key pair; returns (private key path, public key path)."""
    _check_key_id(name)
    key = X25519PrivateKey.generate()
    return _write_key_pair(directory, name, _private_pem(key), _public_pem(key.public_key()))


def load_device_private_key(path: Path) -> X25519PrivateKey:
    """Load a phone's X25519 private key from a PEM file."""
    key = _load_private(path)
    if not isinstance(key, X25519PrivateKey):
        raise EncryptionError(f"{path} is not a device (X25519) private key")
    return key


def device_public_key_from_text(text: str) -> X25519PublicKey:
    """Parse a phone's public key given as PEM or as base64 of its raw 32 bytes."""
    parsed = _public_from_text(text, "the device public key")
    if isinstance(parsed, bytes):
        return X25519PublicKey.from_public_bytes(parsed)
    if not isinstance(parsed, X25519PublicKey):
        raise EncryptionError("the device public key is not an X25519 key")
    return parsed


def _derive(shared: bytes, eph_raw: bytes, device_raw: bytes) -> ChaCha20Poly1305:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=eph_raw + device_raw, info=HKDF_INFO
    ).derive(shared)
    return ChaCha20Poly1305(key)


def encrypt_for_device(body: bytes, device_public: X25519PublicKey) -> bytes:
    """Encrypt ``body`` so only the holder of the device's private key can read it."""
    ephemeral = X25519PrivateKey.generate()
    eph_raw = _raw_public(ephemeral.public_key())
    aead = _derive(ephemeral.exchange(device_public), eph_raw, _raw_public(device_public))
    nonce = os.urandom(_NONCE_BYTES)
    header = (
        f"#luren-encrypted v1 eph={base64.b64encode(eph_raw).decode()} "
        f"nonce={base64.b64encode(nonce).decode()}\n"
    )
    return header.encode("ascii") + aead.encrypt(nonce, body, None)


def is_encrypted(body: bytes) -> bool:
    """True when ``body`` starts like an encrypted body."""
    return body.startswith(ENCRYPTED_MAGIC)


def decrypt_for_device(body: bytes, device_private: X25519PrivateKey) -> bytes:
    """Decrypt a body made by ``encrypt_for_device``; raises ``EncryptionError`` on failure."""
    if len(body) > MAX_FILE_BYTES:
        raise EncryptionError(
            f"the encrypted file is {len(body)} bytes; the limit is {MAX_FILE_BYTES} bytes"
        )
    if not is_encrypted(body):
        raise EncryptionError(
            "the file is not encrypted for this phone (it does not start with '#luren-encrypted')"
        )
    header, ciphertext = _split_header(body, "encrypted")
    match = _ENCRYPTED_HEADER_RE.fullmatch(header)
    if match is None:
        raise EncryptionError(
            "the encryption line is malformed; expected "
            "'#luren-encrypted v1 eph=<base64 key> nonce=<base64 nonce>'"
        )
    eph_raw = _b64decode(match.group(1))
    nonce = _b64decode(match.group(2))
    if eph_raw is None or len(eph_raw) != _RAW_KEY_BYTES:
        raise EncryptionError("the encryption line is malformed: the 'eph' key is not 32 bytes")
    if nonce is None or len(nonce) != _NONCE_BYTES:
        raise EncryptionError("the encryption line is malformed: the nonce is not 12 bytes")
    device_raw = _raw_public(device_private.public_key())
    try:
        shared = device_private.exchange(X25519PublicKey.from_public_bytes(eph_raw))
        return _derive(shared, eph_raw, device_raw).decrypt(nonce, ciphertext, None)
    except (InvalidTag, ValueError):
        raise EncryptionError(
            "cannot decrypt: the file was encrypted for a different phone's key, "
            "or it was damaged"
        ) from None
