"""Tests for signed and per-device encrypted provisioning files (real keys, real bytes)."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from provisioning.signing import (
    MAX_FILE_BYTES,
    EncryptionError,
    SignatureError,
    decrypt_for_device,
    device_public_key_from_text,
    encrypt_for_device,
    generate_device_key,
    generate_key,
    is_encrypted,
    is_signed,
    load_device_private_key,
    load_private_key,
    load_public_keys,
    public_key_from_text,
    sign,
    verify,
)

BODY = b'[device]\nlanguage = "de"\n\n[[lines]]\nuser = "101"\npassword = "s3cret"\n'


def _raw(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.fixture(scope="module")
def server_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def trusted(server_key: Ed25519PrivateKey) -> dict[str, Ed25519PublicKey]:
    return {"site-2025": server_key.public_key()}


@pytest.fixture(scope="module")
def signed(server_key: Ed25519PrivateKey) -> bytes:
    return sign(BODY, "site-2025", server_key)


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


# --- signing ---------------------------------------------------------------------------------


def test_round_trip(signed: bytes, trusted: dict[str, Ed25519PublicKey]) -> None:
    assert is_signed(signed)
    assert not is_signed(BODY)
    header, body = signed.split(b"\n", 1)
    assert body == BODY
    assert re.fullmatch(rb"#luren-signed v1 key=site-2025 sig=[A-Za-z0-9+/]{86}==", header)
    assert verify(signed, trusted) == ("site-2025", BODY)


def test_signature_covers_documented_message(
    signed: bytes, trusted: dict[str, Ed25519PublicKey]
) -> None:
    sig = base64.b64decode(signed.split(b"\n", 1)[0].split(b"sig=")[1])
    trusted["site-2025"].verify(sig, b"luren-signed v1\nsite-2025\n" + BODY)  # raises if not


def test_tampered_body_is_rejected(signed: bytes, trusted: dict[str, Ed25519PublicKey]) -> None:
    with pytest.raises(SignatureError, match="changed after it was signed"):
        verify(_flip(signed, len(signed) - 5), trusted)


def test_appended_bytes_are_rejected(signed: bytes, trusted: dict[str, Ed25519PublicKey]) -> None:
    with pytest.raises(SignatureError, match="bad signature"):
        verify(signed + b"\n[api]\nenabled = true\n", trusted)


def test_tampered_signature_is_rejected(
    server_key: Ed25519PrivateKey, trusted: dict[str, Ed25519PublicKey]
) -> None:
    data = sign(BODY, "site-2025", server_key)
    header, body = data.split(b"\n", 1)
    sig = bytearray(base64.b64decode(header.split(b"sig=")[1]))
    sig[10] ^= 0x40
    forged = header.split(b"sig=")[0] + b"sig=" + base64.b64encode(bytes(sig)) + b"\n" + body
    with pytest.raises(SignatureError, match="bad signature"):
        verify(forged, trusted)


def test_signature_cannot_move_to_another_key_id(server_key: Ed25519PrivateKey) -> None:
    # The same key trusted under two names: a signature made for one name fails under the other.
    both = {"old": server_key.public_key(), "new": server_key.public_key()}
    data = sign(BODY, "old", server_key)
    moved = data.replace(b"key=old ", b"key=new ", 1)
    assert verify(data, both) == ("old", BODY)
    with pytest.raises(SignatureError, match="bad signature"):
        verify(moved, both)


def test_unknown_key_id(signed: bytes) -> None:
    other = {"lab": Ed25519PrivateKey.generate().public_key()}
    with pytest.raises(SignatureError, match=r"key 'site-2025', which this phone does not trust"
                       r" \(trusted keys: lab\)"):
        verify(signed, other)
    with pytest.raises(SignatureError, match=r"trusted keys: none"):
        verify(signed, {})


def test_wrong_key_same_name(signed: bytes) -> None:
    impostor = {"site-2025": Ed25519PrivateKey.generate().public_key()}
    with pytest.raises(SignatureError, match="bad signature"):
        verify(signed, impostor)


def test_unsigned_file(trusted: dict[str, Ed25519PublicKey]) -> None:
    with pytest.raises(SignatureError, match="not signed"):
        verify(BODY, trusted)
    with pytest.raises(SignatureError, match="not signed"):
        verify(b"", trusted)


@pytest.mark.parametrize("header", [
    b"#luren-signed v1\n",
    b"#luren-signed v1 key=site-2025\n",
    b"#luren-signed v1 key=site-2025 sig=!!!notbase64!!!\n",
    b"#luren-signed v1 key=site-2025 sig=AAAA\n",  # valid base64, 3 bytes
    b"#luren-signed v1 key=bad/name sig=" + base64.b64encode(bytes(64)) + b"\n",
    b"#luren-signed v1  key=site-2025 sig=" + base64.b64encode(bytes(64)) + b"\n",
    b"#luren-signed v1 key=site-2025 sig=" + base64.b64encode(bytes(64)) + b" extra\n",
    b"#luren-signed \xff\xfe\n",
])
def test_garbage_header(header: bytes, trusted: dict[str, Ed25519PublicKey]) -> None:
    with pytest.raises(SignatureError, match=r"malformed|damaged"):
        verify(header + BODY, trusted)


def test_other_version_is_named(trusted: dict[str, Ed25519PublicKey]) -> None:
    with pytest.raises(SignatureError, match="format v2; this phone reads only v1"):
        verify(b"#luren-signed v2 key=a sig=AAAA\n" + BODY, trusted)


def test_header_without_newline(signed: bytes, trusted: dict[str, Ed25519PublicKey]) -> None:
    header = signed.split(b"\n", 1)[0]
    with pytest.raises(SignatureError, match="does not end"):
        verify(header, trusted)


def test_crlf_conversion_is_explained(signed: bytes, trusted: dict[str, Ed25519PublicKey]) -> None:
    with pytest.raises(SignatureError, match="Windows line break"):
        verify(signed.replace(b"\n", b"\r\n"), trusted)


def test_empty_body_signed_is_ok(
    server_key: Ed25519PrivateKey, trusted: dict[str, Ed25519PublicKey]
) -> None:
    data = sign(b"", "site-2025", server_key)
    assert data.endswith(b"\n")
    assert verify(data, trusted) == ("site-2025", b"")


def test_oversize_rejected(server_key: Ed25519PrivateKey, trusted: dict[str, Ed25519PublicKey]
                           ) -> None:
    big = b"#" * MAX_FILE_BYTES
    with pytest.raises(SignatureError, match="limit is 1048576 bytes"):
        sign(big, "site-2025", server_key)
    with pytest.raises(SignatureError, match="limit is 1048576 bytes"):
        verify(b"#luren-signed v1 key=site-2025 sig=x\n" + big, trusted)
    # Just under the limit still works.
    fits = sign(b"#" * (MAX_FILE_BYTES - 200), "site-2025", server_key)
    assert len(fits) <= MAX_FILE_BYTES
    assert verify(fits, trusted)[0] == "site-2025"


def test_sign_refuses_bad_key_id(server_key: Ed25519PrivateKey) -> None:
    for bad in ("", "a b", "x" * 65, "../etc", "ключ"):
        with pytest.raises(SignatureError, match="not allowed"):
            sign(BODY, bad, server_key)
    assert sign(BODY, "A.b_c-9" + "x" * 57, server_key)  # 64 characters is fine


# --- key files -------------------------------------------------------------------------------


def test_key_files(tmp_path: Path) -> None:
    key_path, pub_path = generate_key(tmp_path / "keys", "site-2025")
    assert (key_path.name, pub_path.name) == ("site-2025.key", "site-2025.pub")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")

    key_id, key = load_private_key(key_path)
    assert key_id == "site-2025"
    trusted = load_public_keys([pub_path])
    assert list(trusted) == ["site-2025"]
    assert verify(sign(BODY, key_id, key), trusted) == ("site-2025", BODY)


def test_key_files_are_never_overwritten(tmp_path: Path) -> None:
    key_path, pub_path = generate_key(tmp_path, "site")
    before = (key_path.read_bytes(), pub_path.read_bytes())
    with pytest.raises(FileExistsError, match="already exists"):
        generate_key(tmp_path, "site")
    assert (key_path.read_bytes(), pub_path.read_bytes()) == before

    pub_path.unlink()  # a lone public file blocks too, and no key is left half-made
    (tmp_path / "other.pub").write_text("placeholder")
    with pytest.raises(FileExistsError):
        generate_key(tmp_path, "other")
    assert not (tmp_path / "other.key").exists()


def test_load_private_key_rejects_wrong_files(tmp_path: Path) -> None:
    _, pub = generate_key(tmp_path, "site")
    with pytest.raises(SignatureError, match="not a usable private key"):
        load_private_key(pub)
    dev_key, _ = generate_device_key(tmp_path, "phone1")
    with pytest.raises(SignatureError, match="not an Ed25519 signing key"):
        load_private_key(dev_key)


def test_load_public_keys_problems(tmp_path: Path) -> None:
    _, pub = generate_key(tmp_path / "a", "site")
    _, same_name = generate_key(tmp_path / "b", "site")
    with pytest.raises(SignatureError, match="two public key files are named 'site'"):
        load_public_keys([pub, same_name])
    junk = tmp_path / "junk.pub"
    junk.write_text("hello")
    with pytest.raises(SignatureError, match=r"junk\.pub: public key 'junk' is neither"):
        load_public_keys([junk])
    binary = tmp_path / "bin.pub"
    binary.write_bytes(b"\xff\x00\xfe")
    with pytest.raises(SignatureError, match="not text"):
        load_public_keys([binary])
    assert load_public_keys([]) == {}


def test_public_key_from_text(server_key: Ed25519PrivateKey) -> None:
    public = server_key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    b64 = base64.b64encode(_raw(public)).decode()
    for text in (pem, f"  {pem}\n", b64, f"{b64}\n"):
        assert _raw(public_key_from_text("site", text)) == _raw(public)


@pytest.mark.parametrize("text", [
    "",
    "not a key",
    base64.b64encode(bytes(31)).decode(),
    base64.b64encode(bytes(33)).decode(),
    "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n",
])
def test_public_key_from_text_garbage(text: str) -> None:
    with pytest.raises(SignatureError, match="public key 'site'"):
        public_key_from_text("site", text)


def test_public_key_from_text_wrong_kind() -> None:
    x_pem = X25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(SignatureError, match="not an Ed25519 key"):
        public_key_from_text("site", x_pem)
    with pytest.raises(SignatureError, match="not allowed"):
        public_key_from_text("bad id", base64.b64encode(bytes(32)).decode())


# --- per-device encryption -------------------------------------------------------------------


@pytest.fixture(scope="module")
def device() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def test_encryption_round_trip(device: X25519PrivateKey) -> None:
    body = encrypt_for_device(BODY, device.public_key())
    assert is_encrypted(body)
    assert not is_encrypted(BODY)
    assert b"s3cret" not in body
    header = body.split(b"\n", 1)[0]
    assert re.fullmatch(rb"#luren-encrypted v1 eph=[A-Za-z0-9+/]{43}= nonce=[A-Za-z0-9+/]{16}",
                        header)
    assert decrypt_for_device(body, device) == BODY
    # Fresh ephemeral key and nonce every time.
    assert encrypt_for_device(BODY, device.public_key()) != body
    assert decrypt_for_device(encrypt_for_device(b"", device.public_key()), device) == b""


def test_wrong_device_key_fails(device: X25519PrivateKey) -> None:
    body = encrypt_for_device(BODY, device.public_key())
    with pytest.raises(EncryptionError, match="different phone's key"):
        decrypt_for_device(body, X25519PrivateKey.generate())


def test_tampered_ciphertext_fails(device: X25519PrivateKey) -> None:
    body = encrypt_for_device(BODY, device.public_key())
    for index in (len(body) - 1, len(body) - 30):
        with pytest.raises(EncryptionError, match="damaged"):
            decrypt_for_device(_flip(body, index), device)
    with pytest.raises(EncryptionError, match="damaged"):
        decrypt_for_device(body[:-1], device)


def test_tampered_encryption_header_fails(device: X25519PrivateKey) -> None:
    body = encrypt_for_device(BODY, device.public_key())
    header, ciphertext = body.split(b"\n", 1)
    other_nonce = re.sub(rb"nonce=\S+", b"nonce=" + base64.b64encode(bytes(12)), header)
    with pytest.raises(EncryptionError, match="damaged"):
        decrypt_for_device(other_nonce + b"\n" + ciphertext, device)
    other_eph = re.sub(
        rb"eph=\S+", b"eph=" + base64.b64encode(_raw(X25519PrivateKey.generate().public_key())),
        header,
    )
    with pytest.raises(EncryptionError, match="damaged"):
        decrypt_for_device(other_eph + b"\n" + ciphertext, device)


@pytest.mark.parametrize("body, message", [
    (BODY, "not encrypted"),
    (b"#luren-encrypted v1 eph=AAAA nonce=AAAA", "does not end"),
    (b"#luren-encrypted v1 eph=AAAA\nxx", "malformed"),
    (b"#luren-encrypted v1 eph=AAAA nonce=" + base64.b64encode(bytes(12)) + b"\nxx", "32 bytes"),
    (b"#luren-encrypted v1 eph=" + base64.b64encode(bytes(32)) + b" nonce=AAAA\nxx", "12 bytes"),
    (b"#luren-encrypted v9 eph=x nonce=y\nxx", "format v9"),
])
def test_malformed_encrypted_body(device: X25519PrivateKey, body: bytes, message: str) -> None:
    with pytest.raises(EncryptionError, match=message):
        decrypt_for_device(body, device)


def test_device_key_files(tmp_path: Path) -> None:
    key_path, pub_path = generate_device_key(tmp_path, "phone-00a1b2c3d4e5")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        generate_device_key(tmp_path, "phone-00a1b2c3d4e5")
    private = load_device_private_key(key_path)
    public = device_public_key_from_text(pub_path.read_text())
    assert _raw(public) == _raw(private.public_key())
    from_b64 = device_public_key_from_text(base64.b64encode(_raw(public)).decode())
    assert _raw(from_b64) == _raw(public)
    assert decrypt_for_device(encrypt_for_device(BODY, public), private) == BODY


def test_device_key_parsing_errors(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="device public key is neither"):
        device_public_key_from_text("garbage")
    ed_pem = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(EncryptionError, match="not an X25519 key"):
        device_public_key_from_text(ed_pem)
    sign_key, _ = generate_key(tmp_path, "site")
    with pytest.raises(EncryptionError, match="not a device"):
        load_device_private_key(sign_key)


def test_encrypted_then_signed_full_path(tmp_path: Path) -> None:
    # Server side: its signing key and the phone's public key (as a config value would hold it).
    sign_key_path, sign_pub_path = generate_key(tmp_path / "server", "site-2025")
    dev_key_path, dev_pub_path = generate_device_key(tmp_path / "phone", "device")
    key_id, signing_key = load_private_key(sign_key_path)
    phone_public = device_public_key_from_text(dev_pub_path.read_text())
    published = sign(encrypt_for_device(BODY, phone_public), key_id, signing_key)
    assert b"s3cret" not in published

    # Phone side: verify first, then decrypt.
    trusted = load_public_keys([sign_pub_path])
    got_id, body = verify(published, trusted)
    assert got_id == "site-2025"
    assert is_encrypted(body)
    assert decrypt_for_device(body, load_device_private_key(dev_key_path)) == BODY

    # A change anywhere is caught by the signature before decryption is tried.
    with pytest.raises(SignatureError, match="bad signature"):
        verify(_flip(published, len(published) - 3), trusted)
