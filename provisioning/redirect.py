"""The phone asking a redirect service for its provisioning URL (zero-touch first contact).

A phone with no provisioning URL and a `redirect_url` (the factory's redirect service, in the
style of Yealink RPS, Snom SRAPS or Poly ZTP) asks it, with its device certificate as TLS client
certificate, where its provisioning files are:

    GET <redirect_url>/redirect/v1/<mac: 12 lowercase hex digits>
    200 application/json  {"url": "https://prov.example.se/luren/"}

    try:
        url = ask_redirect("https://redirect.luren.example", mac, settings, cache_dir)
    except RedirectError as exc:
        show(str(exc))  # "redirect service https://…: it does not know this phone (MAC …)"

The request goes through `provisioning.fetch.Fetcher`, so the settings' CA pinning, certificate
pins, timeout and client certificate apply; the answer may be at most `MAX_ANSWER_BYTES`. The
settings' user name and password are never sent: the service knows the phone by its certificate
only. Every failure is a `RedirectError` saying what went wrong in a technician's words.

`check_provisioning_url` is the one rule for a URL handed out by a redirect, shared with the
server side (`provisioning.server.redirect`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from provisioning.client import normalise_mac
from provisioning.fetch import Fetcher, FetchError, FetchSettings

PATH_PREFIX = "/redirect/v1/"
MAX_ANSWER_BYTES = 4096
MAX_URL_LENGTH = 2048

_STATUS_WORDS = {
    "answered 400": "it did not understand the request for MAC {mac}",
    "answered 403": "it refused this phone: the device certificate is not the one registered "
                    "for MAC {mac}",
    "answered 404": "it does not know this phone (MAC {mac}), or has no provisioning URL for it",
}


class RedirectError(Exception):
    """The redirect service gave no usable URL; `str()` names the service and the reason."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"redirect service {service}: {reason}")
        self.service = service
        self.reason = reason


def check_provisioning_url(url: object, *, allow_http: bool = False) -> str:
    """`url` if a phone may be sent there; ValueError in words otherwise.

    It must be an absolute https:// address (http:// only with `allow_http`) with a server
    name, at most `MAX_URL_LENGTH` characters, without a user name or password, query,
    fragment, spaces or control characters.
    """
    if not isinstance(url, str) or not url:
        raise ValueError("the provisioning URL is missing or not text")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the provisioning URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValueError("the provisioning URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"the provisioning URL is not a valid address ({exc})") from exc
    _check_parts(parts.scheme, parts.netloc, parts.hostname, allow_http)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError("the provisioning URL must be a plain folder address, "
                         "without ?query or #fragment")
    return url


def _check_parts(scheme: str, netloc: str, host: str | None, allow_http: bool) -> None:
    if scheme == "http" and not allow_http:
        raise ValueError("the provisioning URL is plain http; only https is allowed "
                         "(unless allow_http)")
    if scheme not in ("http", "https"):
        raise ValueError("the provisioning URL is not an https:// address")
    if "@" in netloc:
        raise ValueError("the provisioning URL contains a user name or password")
    if not host:
        raise ValueError("the provisioning URL has no server name")


def redirect_request_url(redirect_url: str, mac: str) -> str:
    """`<redirect_url>/redirect/v1/<mac12>`; ValueError in words for a bad base or MAC."""
    base = redirect_url.rstrip("/") if isinstance(redirect_url, str) else redirect_url
    check_provisioning_url(base, allow_http=True)  # the scheme is checked by the Fetcher
    return f"{base}{PATH_PREFIX}{normalise_mac(mac)}"


def ask_redirect(redirect_url: str, mac: str, settings: FetchSettings, cache_dir: Path) -> str:
    """The provisioning URL the redirect service gives this phone; RedirectError otherwise.

    `settings` are for the redirect service (its CA or pins, the device certificate as
    `client_cert`/`client_key`, timeout, allow_http); `cache_dir` keeps the Fetcher's cache.
    """
    service = _shown(redirect_url)
    try:
        mac12 = normalise_mac(mac)
        request_url = redirect_request_url(redirect_url, mac12)
    except ValueError as exc:
        raise RedirectError(service, str(exc)) from exc
    body = _fetch(request_url, _redirect_settings(settings), cache_dir, service, mac12)
    return _url_from_answer(body, service, allow_http=settings.allow_http)


def _redirect_settings(settings: FetchSettings) -> FetchSettings:
    """No password for the redirect service, and at most a few KiB of answer."""
    return dataclasses.replace(settings, username="", password="",
                               max_bytes=min(settings.max_bytes, MAX_ANSWER_BYTES))


def _fetch(request_url: str, settings: FetchSettings, cache_dir: Path, service: str,
           mac: str) -> bytes:
    try:
        with Fetcher(settings, cache_dir) as fetcher:
            return fetcher.fetch(request_url).body
    except FetchError as exc:
        raise RedirectError(service, _fetch_reason(exc.reason, mac)) from exc


def _fetch_reason(reason: str, mac: str) -> str:
    for prefix, words in _STATUS_WORDS.items():
        if reason.startswith(prefix):
            return f"{words.format(mac=mac)} ({reason})"
    return f"it could not be asked: {reason}"


def _url_from_answer(body: bytes, service: str, *, allow_http: bool) -> str:
    answer = _json(body, service)
    if not isinstance(answer, dict) or "url" not in answer:
        raise RedirectError(service, 'its answer has no "url"')
    try:
        return check_provisioning_url(answer["url"], allow_http=allow_http)
    except ValueError as exc:
        raise RedirectError(service, f"it gave an unusable address: {exc}") from exc


def _json(body: bytes, service: str) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RedirectError(service, "its answer is not JSON (is this a redirect service?)") \
            from exc


def _shown(redirect_url: object) -> str:
    """The service address for messages: without a user name or password."""
    text = str(redirect_url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "(invalid address)"
    if "@" in parts.netloc:
        return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return text
