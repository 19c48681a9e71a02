"""Masking secrets in what the console and the control API show (firmware/console/masking.py):
the known values of the running config, the label rules, prose left alone, JSON-like data."""

from __future__ import annotations

import json

import pytest

from firmware.config import parse_config
from firmware.console.auth import hash_password
from firmware.console.masking import MASK, MIN_SECRET_LEN, Masker, config_secrets

FAST = 2**10
"""scrypt cost: the hash only has to be valid."""


# --- known values ----------------------------------------------------------------------------


def test_a_known_value_is_masked_wherever_it_appears() -> None:
    masker = Masker(["Hunter-22"])
    shown = masker.text("REGISTER with Hunter-22; retry with Hunter-22 again")
    assert "Hunter-22" not in shown
    assert shown == f"REGISTER with {MASK}; retry with {MASK} again"


def test_the_longest_known_value_is_masked_first_so_no_tail_leaks() -> None:
    masker = Masker(["abc", "abcdef-long"])
    shown = masker.text("x abcdef-long y abc z")
    assert shown == f"x {MASK} y {MASK} z"
    assert "-long" not in shown and "def" not in shown


def test_values_shorter_than_the_minimum_are_not_masked_by_value() -> None:
    short = "7" * (MIN_SECRET_LEN - 1)
    masker = Masker([short])
    assert masker.text(f"call 1{short}8 now") == f"call 1{short}8 now"


def test_values_shorter_than_the_minimum_are_still_masked_by_label() -> None:
    short = "7" * (MIN_SECRET_LEN - 1)
    shown = Masker([short]).text(f"password={short}")
    assert shown == f"password={MASK}"


def test_update_replaces_the_known_values() -> None:
    masker = Masker(["old-secret"])
    masker.update(["new-secret"])
    assert masker.text("old-secret new-secret") == f"old-secret {MASK}"


def test_non_text_known_values_are_ignored() -> None:
    masker = Masker(["real-secret", 12345, None])  # type: ignore[list-item]
    assert masker.text("12345 real-secret") == f"12345 {MASK}"


# --- the label rules -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("password=hunter2&user=anna", f"password={MASK}&user=anna"),
    ("password = hunter2 and more", f"password = {MASK} and more"),
    ('password = "two words" after', f"password = {MASK} after"),
    ("ldap_password='x y'", f"ldap_password={MASK}"),
    ("passwd=a; pwd=b, psk=c", f"passwd={MASK}; pwd={MASK}, psk={MASK}"),
    ("API_KEY=k1 api-key=k2 private_key=k3", f"API_KEY={MASK} api-key={MASK} private_key={MASK}"),
    ("secret=s}", f"secret={MASK}}}"),
    ("console.password_hash = scrypt$1$2", f"console.password_hash = {MASK}"),
    ("https://prov.example.se/?token=abc123", f"https://prov.example.se/?token={MASK}"),
])
def test_key_equals_value_is_masked(text: str, expected: str) -> None:
    assert Masker().text(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ('{"password": "hunter2", "user": "anna"}', f'{{"password": {MASK}, "user": "anna"}}'),
    ('{"token":"t-1"}', f'{{"token":{MASK}}}'),
    ('{"sip_password": "a\\"b\\\\c", "n": 1}', f'{{"sip_password": {MASK}, "n": 1}}'),
])
def test_json_string_values_of_secret_keys_are_masked(text: str, expected: str) -> None:
    assert Masker().text(text) == expected


def test_json_with_an_escaped_quote_keeps_no_part_of_the_secret() -> None:
    document = json.dumps({"password": 'start"middle"end', "user": "anna"})
    shown = Masker().text(document)
    assert not any(part in shown for part in ("start", "middle", "end"))
    assert '"user": "anna"' in shown


@pytest.mark.parametrize(("text", "expected"), [
    ("token: abc def", f"token: {MASK}"),
    ("  password:hunter2", f"  password:{MASK}"),
    ("user: anna\nsecret: s3\nnext: 1", f"user: anna\nsecret: {MASK}\nnext: 1"),
])
def test_key_colon_value_at_the_start_of_a_line_is_masked(text: str, expected: str) -> None:
    assert Masker().text(text) == expected


@pytest.mark.parametrize("header", ["Authorization", "Proxy-Authorization", "authorization"])
def test_authorization_headers_are_masked_whole(header: str) -> None:
    message = (f"REGISTER sip:pbx SIP/2.0\r\n{header}: Digest username=\"1001\", "
               f"realm=\"pbx\", nonce=\"n1\", response=\"0a1b2c3d\"\r\nCSeq: 2 REGISTER")
    shown = Masker().text(message)
    assert f"\n{header}: {MASK}" in shown
    assert "0a1b2c3d" not in shown and "nonce" not in shown and "username" not in shown
    assert shown.startswith("REGISTER sip:pbx SIP/2.0\r\n") and shown.endswith("CSeq: 2 REGISTER")


@pytest.mark.parametrize("line", ["Authorization: Digest response=\"0a1b\"", "token: abc"])
def test_masking_keeps_crlf_line_ends(line: str) -> None:
    shown = Masker().text(f"first\r\n{line}\r\nlast\r\n")
    assert shown.count("\r\n") == 3


def test_a_bearer_token_inside_a_line_is_masked() -> None:
    shown = Masker().text("GET /api/v1/status Authorization: Bearer eyJhbGciOi.x.y from 10.0.0.5")
    assert shown == f"GET /api/v1/status Authorization: Bearer {MASK} from 10.0.0.5"


@pytest.mark.parametrize(("text", "expected"), [
    ("fetch https://admin:pa55@prov.example.se/luren/",
     f"fetch https://admin:{MASK}@prov.example.se/luren/"),
    ("ldaps://cn=reader:pw1@ldap.example.se", f"ldaps://cn=reader:{MASK}@ldap.example.se"),
    ("sip://1001:x@pbx", f"sip://1001:{MASK}@pbx"),
])
def test_the_password_in_a_url_is_masked(text: str, expected: str) -> None:
    assert Masker().text(text) == expected


def test_a_url_without_a_password_is_left_alone() -> None:
    text = "https://prov.example.se:8443/luren/ and sip:1001@pbx.example.se"
    assert Masker().text(text) == text


@pytest.mark.parametrize("kind", ["", "RSA ", "EC ", "ENCRYPTED "])
def test_a_pem_private_key_block_is_masked(kind: str) -> None:
    body = "MHcCAQEEIBb4c2VjcmV0LWtleS1ib2R5\nAwEHoUQDQgAE0123456789abcdef"
    text = (f"key file:\n-----BEGIN {kind}PRIVATE KEY-----\n{body}\n"
            f"-----END {kind}PRIVATE KEY-----\nloaded")
    shown = Masker().text(text)
    assert "MHcCAQ" not in shown and "AwEHoU" not in shown
    assert shown == f"key file:\n-----BEGIN PRIVATE KEY----- {MASK}\nloaded"


def test_a_cut_off_pem_private_key_is_masked_to_the_end() -> None:
    shown = Masker().text("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq")
    assert "MIIEvQ" not in shown


def test_a_certificate_is_not_a_private_key() -> None:
    text = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----"
    assert Masker().text(text) == text


@pytest.mark.parametrize("prose", [
    "config set: api.token: is a secret (password, token or hash) and is never set on the phone",
    "Logged in with the one-time code; a new code is now shown on the phone. "
    "Set console.password_hash by provisioning.",
    "the password is wrong",
    "Type help for the commands, logout to leave.",
    "token expired, asking again",
    "config set: lines[0].password: is inside a list, which comes whole from provisioning",
])
def test_ordinary_prose_is_not_masked(prose: str) -> None:
    assert Masker(["unrelated-secret"]).text(prose) == prose


# --- data ----------------------------------------------------------------------------------------


def test_data_masks_secret_named_keys_and_known_values_deep_inside() -> None:
    masker = Masker(["Known-Value-1"])
    value = {
        "lines": [{"user": "1001", "password": "p1", "auth": {"secret_word": "s"}}],
        "api": {"token": "t", "listen": "127.0.0.1"},
        "notes": ["first", ("uses Known-Value-1", 3)],
        "tls": {"private_key": "-----BEGIN", "password_hash": "scrypt$x"},
        "text": "password=inline",
    }
    shown = masker.data(value)
    assert shown == {
        "lines": [{"user": "1001", "password": MASK, "auth": {"secret_word": MASK}}],
        "api": {"token": MASK, "listen": "127.0.0.1"},
        "notes": ["first", [f"uses {MASK}", 3]],
        "tls": {"private_key": MASK, "password_hash": MASK},
        "text": f"password={MASK}",
    }


def test_data_keeps_empty_secrets_empty_and_leaves_other_values_alone() -> None:
    value = {"password": "", "token": None, "secrets": [], "count": 3, "ok": True}
    assert Masker().data(value) == value


def test_data_masks_a_whole_secret_named_table() -> None:
    assert Masker().data({"secrets": {"a": "b"}, "tokens": ["x"]}) == {
        "secrets": MASK, "tokens": MASK}


@pytest.mark.parametrize("key", ["api_key", "passwd", "psk"])
def test_data_masks_every_key_the_text_rules_call_secret(key: str) -> None:
    masker = Masker()
    assert masker.text(f"{key}=Zx81") == f"{key}={MASK}"  # the text rule says it is a secret
    assert masker.data({key: "Zx81"}) == {key: MASK}


# --- config_secrets ------------------------------------------------------------------------------


def test_config_secrets_finds_every_secret_of_a_parsed_config() -> None:
    console_hash = hash_password("technician pw", n=FAST)
    config = parse_config({
        "lines": [{"user": "1001", "password": "line-one-pw", "registrar": "pbx"},
                  {"user": "1002", "password": "line-two-pw", "registrar": "pbx"},
                  {"user": "1003", "registrar": "pbx"}],
        "api": {"token": "api-token-1"},
        "provisioning": {"password": "prov-pw-1"},
        "directory": {"ldap_password": "ldap-pw-1"},
        "console": {"password_hash": console_hash},
    })
    found = config_secrets(config)
    assert set(found) >= {"line-one-pw", "line-two-pw", "api-token-1", "prov-pw-1",
                          "ldap-pw-1", console_hash}
    assert "" not in found and "1001" not in found and "pbx" not in found
    assert found == sorted(set(found))


def test_config_secrets_of_a_config_without_secrets_is_empty() -> None:
    config = parse_config({"lines": [{"user": "1001", "registrar": "pbx"}]})
    assert config_secrets(config) == []


def test_a_masker_made_from_config_secrets_hides_them_in_any_text() -> None:
    config = parse_config({"lines": [{"user": "1001", "password": "Pw-In-Text",
                                      "registrar": "pbx"}],
                           "api": {"token": "Tok-In-Text"}})
    masker = Masker(config_secrets(config))
    shown = masker.text("sent Pw-In-Text to pbx, then Tok-In-Text")
    assert "Pw-In-Text" not in shown and "Tok-In-Text" not in shown
    assert shown == f"sent {MASK} to pbx, then {MASK}"
