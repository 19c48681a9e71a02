"""Finding the provisioning server when the phone's own file names none.

Order (`[provisioning] discovery`, e.g. `["dhcp", "pnp"]` in a factory image):

0. the URL found by an earlier discovery (`<data>/provisioning/found.json`), so a phone that
   was set up once does not depend on DHCP or multicast at every start;
1. `dhcp`: the newest lease among `dhcp_leases` (dhclient, systemd-networkd, dhcpcd, or a hook's
   JSON), options 160, 114, 66, then 43 with vendor class "luren" (`provisioning.dhcp`);
2. `pnp`: SIP plug-and-play, a SUBSCRIBE to 224.0.1.75:5060 answered by a unicast NOTIFY
   carrying the URL (`provisioning.pnp`); only https URLs unless `pnp_https_only = false`;
3. `redirect`: the redirect service at `redirect_url`, which knows the phone by its device
   certificate (`client_cert`) and answers with the customer's URL (`provisioning.redirect`).

A URL is only taken when it is https, or http with `allow_http` (plug-and-play also drops
http itself while `pnp_https_only`). The one found is written
(atomically) to `found.json` and used from then on; if it stops working the phone runs on its
last-known-good files and discovery is tried again at the next start.
"""

from __future__ import annotations

import glob
import json
import logging
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from firmware.config.schema import ProvisioningConfig, split_host_port
from firmware.storage import atomic_write_json
from provisioning import dhcp, pnp
from provisioning.fetch import FetchSettings
from provisioning.redirect import RedirectError, ask_redirect, check_provisioning_url

log = logging.getLogger("luren.provisioning")

FOUND_FILE = "found.json"


@dataclass(frozen=True)
class Found:
    url: str
    source: str  # "stored (dhcp)", "dhcp option 114", "plug-and-play from 127.0.0.1:5060" ...


def _acceptable(url: str, settings: ProvisioningConfig) -> bool:
    """A discovered URL is taken only if a phone may be sent there: https (http with
    allow_http), a server name, no user name or password, no query (`check_provisioning_url`)."""
    try:
        check_provisioning_url(url, allow_http=settings.allow_http)
    except ValueError as exc:
        log.warning("discovered provisioning URL %r ignored: %s", _shown(url), exc)
        return False
    return True


def _shown(url: str) -> str:
    """`url` for the log: without a user name or password, at most 200 characters."""
    scheme, sep, rest = url.partition("://")
    host_part, slash, path = rest.partition("/")
    if "@" in host_part:
        host_part = "***@" + host_part.rsplit("@", 1)[1]
    return (scheme + sep + host_part + slash + path)[:200]


def _version() -> str:
    try:
        return metadata.version("luren")
    except metadata.PackageNotFoundError:
        return "0"


def discover(settings: ProvisioningConfig, data_dir: Path, *, mac: str, model: str,
             bind_address: str = "") -> Found | None:
    """The provisioning URL by the configured discovery, or None when nothing answered."""
    stored = _stored(data_dir)
    if stored is not None:
        return stored
    for method in settings.discovery:
        if method == "dhcp":
            found = _by_dhcp(settings)
        elif method == "pnp":
            found = _by_pnp(settings, mac, model, bind_address)
        else:
            found = _by_redirect(settings, mac, data_dir)
        if found is not None:
            log.info("provisioning server found by %s: %s", found.source, found.url)
            atomic_write_json(data_dir / "provisioning" / FOUND_FILE,
                              {"url": found.url, "source": found.source})
            return found
    log.warning("no provisioning server found (%s)", ", ".join(settings.discovery))
    return None


def _stored(data_dir: Path) -> Found | None:
    try:
        data = json.loads((data_dir / "provisioning" / FOUND_FILE).read_text())
        return Found(str(data["url"]), f"stored ({data.get('source', '?')})")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("the stored provisioning URL is unreadable (%s): discovering again", exc)
        return None


def _by_dhcp(settings: ProvisioningConfig) -> Found | None:
    paths = [Path(p) for pattern in settings.dhcp_leases for p in sorted(glob.glob(pattern))]
    options = dhcp.read_leases(paths)
    if options is None:
        log.info("dhcp: no lease file found (%s)", ", ".join(settings.dhcp_leases))
        return None
    for problem in options.problems:
        log.warning("dhcp (%s): %s", options.source, problem)
    for name, url in dhcp.provisioning_urls(options):
        if _acceptable(url, settings):
            return Found(url, f"dhcp {name} ({options.source})")
    return None


def _by_redirect(settings: ProvisioningConfig, mac: str, data_dir: Path) -> Found | None:
    if not settings.redirect_url:
        log.info("redirect: no redirect_url configured")
        return None
    try:
        fetch = FetchSettings(
            ca_file=Path(settings.redirect_ca_file) if settings.redirect_ca_file else None,
            client_cert=Path(settings.client_cert) if settings.client_cert else None,
            client_key=Path(settings.client_key) if settings.client_key else None,
            timeout_s=float(settings.timeout), allow_http=settings.allow_http)
        url = ask_redirect(settings.redirect_url, mac, fetch,
                           data_dir / "provisioning" / "redirect-cache")
    except (RedirectError, ValueError) as exc:
        log.warning("%s", exc)
        return None
    return Found(url, f"redirect service {settings.redirect_url}")


def _by_pnp(settings: ProvisioningConfig, mac: str, model: str,
            bind_address: str) -> Found | None:
    host, port = split_host_port(settings.pnp_group)
    interface = settings.pnp_interface or (bind_address if bind_address not in ("", "0.0.0.0")
                                           else "")
    result = pnp.discover(mac, model, _version(), group=(host, port or 5060),
                          interface_ip=interface or "0.0.0.0",
                          timeout_s=float(settings.pnp_timeout),
                          https_only=settings.pnp_https_only)
    if result is None:
        return None
    if not _acceptable(result.url, settings):
        return None
    return Found(result.url, f"plug-and-play from {result.server[0]}:{result.server[1]}")
