"""Secrets never leave the phone: every text the console or a command prints goes through here.

Two nets, so a secret caught by neither would have to be both unknown and unlabelled:

- the values: every secret of the running config (line passwords, the API token, the
  provisioning password, the LDAP password, the console's password hash) is replaced wherever
  it appears, whole;
- the labels: ``password=...``, ``token: ...``, ``Authorization: Digest ... response="..."``,
  a URL's ``user:password@``, a PEM private key block - whatever follows such a label is
  replaced, so a secret the phone does not know (one typed by a technician, one in a SIP
  message from elsewhere) is masked too.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

MASK: Final = "***"
MIN_SECRET_LEN: Final = 3
"""Shorter values are not masked by value (a 1-character password would mask every "1"); the
label rules still apply to them."""

_SECRET_WORDS: Final = (r"(?:[a-z_]*password|passwd|pwd|secret|token|api[_-]?key"
                        r"|private[_-]?key|psk|password_hash)")
_LABELLED: Final = [
    # key = value (config files, query strings, logs), quoted or not
    re.compile(rf"""(?i)(\b{_SECRET_WORDS}\s*=\s*)("[^"\r\n]+"|'[^'\r\n]+'|[^\s"',;&}}\]]+)"""),
    # "key": "value" (JSON)
    re.compile(rf"""(?i)("{_SECRET_WORDS}"\s*:\s*)("(?:[^"\\]|\\.)*")"""),
    # key: value at the start of a line (YAML, headers, key files)
    re.compile(rf"""(?im)^([ \t]*{_SECRET_WORDS}[ \t]*:[ \t]*)([^\s][^\r\n]*)"""),
    # Authorization / Proxy-Authorization: the whole credentials
    re.compile(r"(?im)^((?:proxy-)?authorization[ \t]*:[ \t]*)([^\r\n]+)"),
    re.compile(r"(?i)\b(authorization:\s*bearer\s+)(\S+)"),
    # user:password@ in URLs
    re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)([^/\s@]+)(?=@)"),
]
_PEM: Final = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S)


class Masker:
    """Masks secrets in text; `known` are the exact values to hide (the config's secrets)."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known: list[str] = []
        self.update(known)

    def update(self, known: Iterable[str]) -> None:
        """Replace the known values (after a config change)."""
        values = {v for v in known if isinstance(v, str) and len(v) >= MIN_SECRET_LEN}
        self._known = sorted(values, key=len, reverse=True)  # longest first: no partial leaks

    def text(self, text: str) -> str:
        """`text` with every secret replaced by ***."""
        for value in self._known:
            if value in text:
                text = text.replace(value, MASK)
        text = _PEM.sub("-----BEGIN PRIVATE KEY----- " + MASK, text)
        for rule in _LABELLED:
            text = rule.sub(lambda m: m.group(1) + MASK, text)
        return text

    def data(self, value: Any) -> Any:
        """A JSON-like value with secrets masked in every string (keys kept)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: (MASK if _secret_key(str(k)) and v not in ("", None, [], {})
                        else self.data(v)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _secret_key(key: str) -> bool:
    """A key whose value is secret: the same words the text rules take as labels."""
    return re.search(_SECRET_WORDS, key, re.IGNORECASE) is not None


def config_secrets(config: Any) -> list[str]:
    """Every non-empty value of a field marked secret (or repr=False) in a config dataclass
    tree: line passwords, the API token, the provisioning and LDAP passwords ..."""
    return sorted(set(_walk(config)))


def _walk(node: Any) -> Iterator[str]:
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if (f.metadata.get("secret") or not f.repr) and isinstance(value, str) and value:
                if value != f.default:  # a factory default (PIN 0000) is no secret
                    yield value
            else:
                yield from _walk(value)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _walk(item)
