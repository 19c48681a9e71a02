"""PostgreSQL connection URLs: telling one from a file path, and showing one without its password.

A URL may carry a password in its user part (``postgresql://luren:pw@db/inv``) or as a
``password=`` query parameter; both are shown as ``****``. ``scrub`` takes them out of any text,
e.g. a libpq error message that quotes the part of the URL it could not parse.
"""

from __future__ import annotations

import os
from typing import Final
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

SCHEMES: Final = ("postgresql://", "postgres://")
MASK: Final = "****"


def is_postgres_url(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` is a PostgreSQL URL: a string starting ``postgresql://`` or
    ``postgres://``, in lower case as libpq wants them. A Path object is always a file."""
    return isinstance(target, str) and target.startswith(SCHEMES)


def mask_url(url: str) -> str:
    """``url`` with its password, wherever it is, replaced by ``****``. Never raises."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.partition("://")[0] + "://" + MASK
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    netloc = f"{user}{colon}{MASK if password else ''}{at}{hosts}"
    query = parts.query
    if any(key == "password" for key, _ in _query(query)):
        query = urlencode([(key, MASK if key == "password" else value)
                           for key, value in _query(query)], safe="*")
    return (f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
            + (f"#{parts.fragment}" if parts.fragment else ""))


def passwords_in(url: str) -> list[str]:
    """Every password ``url`` carries, as written and percent-decoded, longest first."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]  # cannot tell where the password is: keep the whole URL out
    found = [parts.netloc.rpartition("@")[0].partition(":")[2]]
    found += [value for key, value in _query(parts.query, decode=False) if key == "password"]
    found += [unquote(text) for text in found]
    return sorted({text for text in found if text}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` with every password of ``url`` replaced by ``****``."""
    for password in passwords_in(url):
        text = text.replace(password, MASK)
    return text


def _query(query: str, *, decode: bool = True) -> list[tuple[str, str]]:
    if not decode:
        return [(unquote(key), value) for key, _, value in
                (pair.partition("=") for pair in query.split("&") if pair)]
    return parse_qsl(query, keep_blank_values=True)
