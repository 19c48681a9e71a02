"""The company directory from an LDAP server (OpenLDAP, Active Directory, ...), using ldap3.

    result = fetch_ldap("ldaps://ldap.example.se", "ou=people,dc=example,dc=se",
                        bind_dn="cn=phone,dc=example,dc=se", password="...")
    for problem in result.problems: log.warning(problem)

Each entry found becomes a `Draft` and goes through the same checks and merging as the
directory files (`draft.build_contacts`): an entry without a usable number is skipped with a
problem. Attributes read:

    name        displayName, else cn
    work        telephoneNumber        mobile      mobile
    home        homePhone              extension   ipPhone (Active Directory)
    other       otherTelephone         company     o (else company)
    department  department, else ou    note        description
    id          uid, else the entry's DN

URLs: `ldap://host[:389]`, `ldaps://host[:636]`, and `ldap://host?starttls` (or
`starttls=True`) for StartTLS. TLS certificates are always checked against the system's CAs,
or `ca_file`; there is no switch to skip the check. A server that cannot be reached, refuses
the bind or the search raises `DirectoryError` naming the server and what failed.
"""

from __future__ import annotations

import contextlib
import math
import ssl
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from .draft import Draft, build_contacts
from .model import MAX_ENTRIES, DirectoryError, ParseResult
from .parse import _capped

NUMBER_ATTRIBUTES = (
    ("telephonenumber", "work"),
    ("mobile", "mobile"),
    ("homephone", "home"),
    ("ipphone", "extension"),
    ("othertelephone", "other"),
)
ATTRIBUTES = ("cn", "displayName", "telephoneNumber", "mobile", "homePhone", "ipPhone",
              "otherTelephone", "o", "company", "ou", "department", "description", "uid")
PAGE_SIZE = 500


def fetch_ldap(url: str, base: str, *, bind_dn: str = "", password: str = "",
               filter: str = "(objectClass=inetOrgPerson)",
               size_limit: int = MAX_ENTRIES, timeout: float = 5.0, starttls: bool = False,
               ca_file: str = "", page_size: int = PAGE_SIZE) -> ParseResult:
    """Search `base` (subtree) for `filter` and make the entries company contacts.

    Binds as `bind_dn`/`password`, anonymously when `bind_dn` is empty. Uses a paged search
    (RFC 2696), so a server's size limit per request does not cut the directory short; at most
    `size_limit` entries are used, the rest is reported as a problem. `timeout` applies to
    connecting and (rounded up to whole seconds) to each answer from the server.
    """
    import ldap3  # only phones that use LDAP need it
    from ldap3.core.exceptions import LDAPException

    host, port, use_ssl, starttls = _parse_url(url, starttls)
    where = f"LDAP server {host}:{port}"
    try:
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file or None) \
            if use_ssl or starttls else None
        server = ldap3.Server(host, port=port, use_ssl=use_ssl, tls=tls, get_info=ldap3.NONE,
                              connect_timeout=timeout)
        conn = ldap3.Connection(server, user=bind_dn or None, password=password or None,
                                # ldap3 packs the receive timeout as whole seconds
                                receive_timeout=max(1, math.ceil(timeout)), read_only=True,
                                auto_referrals=False, raise_exceptions=False)
    except LDAPException as exc:
        raise DirectoryError(f"{where}: {_reason(exc)}") from exc
    try:
        step = "could not connect"
        conn.open()
        if starttls:
            step = "StartTLS failed"
            if not conn.start_tls():
                raise DirectoryError(f"{where}: StartTLS failed: {_result(conn)}")
        step = "could not log in" + (f" as {bind_dn}" if bind_dn else " anonymously")
        if not conn.bind():
            raise DirectoryError(f"{where}: {step}: {_result(conn)}")
        step = f"the search for {filter} under {base} failed"
        problems: list[str] = []
        drafts = _drafts(conn, base, filter, page_size, size_limit, problems, where, step)
        contacts = build_contacts(drafts, problems, size_limit)
    except LDAPException as exc:
        raise DirectoryError(f"{where}: {step}: {_reason(exc)}") from exc
    finally:
        with contextlib.suppress(LDAPException):
            conn.unbind()
    if not contacts:
        problems.append(f"the search for {filter} under {base} found no usable entries")
    return ParseResult(contacts, _capped(problems), "ldap", "utf-8")


def _parse_url(url: str, starttls: bool) -> tuple[str, int, bool, bool]:
    """(host, port, ldaps?, StartTLS?) from `ldap://host:port?starttls` or `ldaps://host`."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise DirectoryError(f"LDAP URL {url!r}: must be ldap://host[:port] or "
                             "ldaps://host[:port]")
    query = {q.split("=", 1)[0].lower() for q in parts.query.split("&") if q}
    starttls = starttls or "starttls" in query
    if scheme == "ldaps" and starttls:
        raise DirectoryError(f"LDAP URL {url!r}: ldaps:// is TLS already; use StartTLS only "
                             "with ldap://")
    try:
        port = parts.port or (636 if scheme == "ldaps" else 389)
    except ValueError as exc:
        raise DirectoryError(f"LDAP URL {url!r}: the port is not a number") from exc
    return unquote(parts.hostname), port, scheme == "ldaps", starttls


def _drafts(conn: object, base: str, search_filter: str, page_size: int, size_limit: int,
            problems: list[str], where: str, step: str) -> Iterator[Draft]:
    """One Draft per entry found; stops after one more than `size_limit` (build_contacts
    reports the cut)."""
    from ldap3 import SUBTREE

    results = conn.extend.standard.paged_search(  # type: ignore[attr-defined]
        base, search_filter, search_scope=SUBTREE, attributes=list(ATTRIBUTES),
        paged_size=page_size, generator=True)
    count = 0
    for item in results:
        if item.get("type") != "searchResEntry":
            continue
        count += 1
        yield _draft(item["dn"], item.get("raw_attributes") or {})
        if count > size_limit:
            return
    result = conn.result or {}  # type: ignore[attr-defined]
    code = result.get("result", 0)
    if code == 4:  # sizeLimitExceeded: the server would not page further
        problems.append(f"{where} stopped after {count} entries (its size limit): the "
                        "directory is incomplete; raise the limit for the phone's account or "
                        "narrow the search")
    elif code not in (0, None):
        raise DirectoryError(f"{where}: {step}: {_result(conn)}")


def _draft(dn: str, raw: dict[str, list[bytes]]) -> Draft:
    values = {key.lower(): [_text(v) for v in vals] for key, vals in raw.items()}

    def first(*names: str) -> str:
        return next((v for name in names for v in values.get(name, []) if v.strip()), "")

    numbers = [(kind, value) for attr, kind in NUMBER_ATTRIBUTES
               for value in values.get(attr, [])]
    return Draft(where=f"entry {dn}", name=first("displayname", "cn"), numbers=numbers,
                 company=first("o", "company"), department=first("department", "ou"),
                 note=first("description"), uid=first("uid") or dn)


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _result(conn: object) -> str:
    result = getattr(conn, "result", None) or {}
    description = result.get("description") or "no answer"
    message = (result.get("message") or "").strip()
    if description == "invalidCredentials":
        description = "wrong user name or password (invalidCredentials)"
    return f"{description}: {message}" if message else description


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
