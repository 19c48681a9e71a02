"""The phone's configuration schema: one frozen dataclass per TOML table.

Every field documents itself through ``field(metadata=doc(...))``; the loader, the generated default
config and ``docs/config.md`` are all derived from these classes, so a key is added or changed
here and nowhere else. Metadata keys:

- ``doc`` (str): what the key does, for people.
- ``choices`` (tuple[str, ...]): the allowed values (for a list: of each element).
- ``min`` / ``max`` (int | float): the allowed numeric range, both ends included.
- ``min_items`` / ``max_items`` (int): the allowed length of a list.
- ``secret`` (bool): never shown in ``repr()`` and redacted by ``config_to_dict()``.

Syntax rules that need code (time zone, dial plan, addresses) are validators registered per field
in ``firmware.config.load``. The address helpers they share with the properties below live here.
The classes hold values only; constructing one directly does not validate it, use
``parse_config()`` for that.
"""

import dataclasses
import ipaddress
import re
from dataclasses import MISSING, Field, dataclass, field
from typing import Any, Final

from audio.synth import RINGTONES

RINGTONE_NAMES: Final = tuple(RINGTONES)

SIP_DEFAULT_PORT: Final = 5060
"""The port a SIP address without one means (RFC 3261, for UDP and TCP)."""

_HOSTNAME_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def doc(
    text: str,
    *,
    choices: tuple[str, ...] = (),
    min: float | None = None,
    max: float | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    secret: bool = False,
) -> dict[str, Any]:
    """Field metadata: the documentation ``text`` and the constraints that are given."""
    limits = {"min": min, "max": max, "min_items": min_items, "max_items": max_items}
    meta: dict[str, Any] = {"doc": text} | {k: v for k, v in limits.items() if v is not None}
    return meta | ({"choices": choices} if choices else {}) | ({"secret": True} if secret else {})


def is_required(f: Field[Any]) -> bool:
    """Whether the key has no default and must be given."""
    return f.default is MISSING and f.default_factory is MISSING


def default_of(f: Field[Any]) -> Any:
    """The field's default value (a fresh copy for lists and tables)."""
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


# --- addresses ------------------------------------------------------------------------------


def host_error(host: str) -> str | None:
    """Why ``host`` is not an IP literal or DNS host name, or None when it is one."""
    if not host:
        return "the host is empty"
    if ":" in host:
        return None if _is_ip(host, 6) else f'"{host}" is neither an IPv6 address nor a host name'
    if re.fullmatch(r"[0-9.]+", host):
        return None if _is_ip(host, 4) else f'"{host}" is not a valid IPv4 address'
    labels = host.split(".")
    if len(host) > 253 or not all(_HOSTNAME_LABEL.fullmatch(label) for label in labels):
        return f'"{host}" is not a valid host name (letters, digits, "-" and ".")'
    return None


def _is_ip(text: str, version: int) -> bool:
    """Whether ``text`` is an IP address literal of the given version."""
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def split_host_port(text: str) -> tuple[str, int | None]:
    """Split ``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` into (host, port or None).

    The host comes back without IPv6 brackets. Raises ValueError saying what is wrong.
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError('"[" without "]"')
        host, rest = text[1:end], text[end + 1:]
        if not _is_ip(host, 6):
            raise ValueError(f'"{host}" in [...] is not a valid IPv6 address')
        if rest and not rest.startswith(":"):
            raise ValueError(f'unexpected "{rest}" after "]"')
        return host, _port(rest[1:]) if rest else None
    if text.count(":") > 1:
        raise ValueError("write an IPv6 address in brackets, e.g. [::1]:5060")
    host, colon, port = text.partition(":")
    problem = host_error(host)
    if problem:
        raise ValueError(problem)
    return host, _port(port) if colon else None


def _port(text: str) -> int:
    """A port number 0..65535 from its decimal text."""
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise ValueError(f'port "{text}" is not a number from 0 to 65535')
    return int(text)


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_sip_address(text: str) -> tuple[str, int]:
    """(host, port) of a ``host``, ``host:port`` or ``sip:host[:port]`` address.

    The host is lower-cased; a missing port is 5060. Raises ValueError saying what is wrong.
    """
    rest = text[4:] if text[:4].lower() == "sip:" else text
    if text[:5].lower() == "sips:":
        raise ValueError("sips: is not supported; use transport = \"tcp\"")
    if "@" in rest:
        raise ValueError("must not contain a user part (\"@\")")
    if ";" in rest or "?" in rest:
        raise ValueError("URI parameters are not supported; give the transport separately")
    host, port = split_host_port(rest)
    if port == 0:
        raise ValueError("port 0 is not a SIP port")
    return host.lower(), SIP_DEFAULT_PORT if port is None else port


def sip_uri(address: str, transport: str) -> str:
    """The normalised ``sip:host:port`` URI of an address, with ``;transport=tcp`` for TCP."""
    uri = "sip:" + join_host_port(*parse_sip_address(address))
    return uri + ";transport=tcp" if transport == "tcp" else uri


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- the tables -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LineConfig:
    """One SIP account (a line key). A desk phone has 1 to 16 of them."""

    user: str = field(metadata=doc('SIP user / extension this line registers as, e.g. "1001".'))
    registrar: str = field(metadata=doc(
        'Registrar (PBX) of this line: host, host:port or sip:host[:port], e.g. '
        '"127.0.0.1:5060" or "sip:pbx.example.se". Without a port, 5060 is used.'))
    password: str = field(default="", repr=False,
                          metadata=doc("SIP digest password.", secret=True))
    auth_user: str = field(default="", metadata=doc(
        "Digest authentication user name; empty = the same as user."))
    display_name: str = field(default="", metadata=doc(
        "Display name sent with calls from this line (caller name)."))
    transport: str = field(default="udp", metadata=doc(
        "SIP transport to the registrar and outbound proxy.", choices=("udp", "tcp")))
    outbound_proxy: str = field(default="", metadata=doc(
        "Outbound proxy all requests go through; empty = none. Same syntax as registrar."))
    register: bool = field(default=True, metadata=doc(
        "Register with the registrar. Off: outgoing calls only."))
    register_expires: int = field(default=300, metadata=doc(
        "Registration lifetime asked for, in seconds.", min=60, max=86400))
    auto_answer: bool = field(default=False, metadata=doc(
        "Answer incoming calls at once on the speaker (for intercoms and test rigs)."))
    label: str = field(default="", metadata=doc("Text shown on the line key; empty = user."))
    dtmf_mode: str = field(default="", metadata=doc(
        "How key presses are sent in this line's calls; empty = the [sip] dtmf_mode.",
        choices=("", "rfc4733", "info", "inband")))
    publish_presence: bool = field(default=True, metadata=doc(
        "Publish the user's referral to the PBX (PUBLISH of presence: open or closed, and the "
        "referral as a note) so colleagues see it."))
    mwi_subscribe: bool = field(default=True, metadata=doc(
        "Subscribe to message waiting (RFC 3842) for this line's voicemail; NOTIFYs sent "
        "unasked are heard either way."))
    ringtone: str = field(default="", metadata=doc(
        "Ring sound of this line's calls, to tell lines apart; empty = the device ringtone.",
        choices=("", *RINGTONE_NAMES)))

    def ringtone_name(self, default: str) -> str:
        """The ringtone of this line (``ringtone``, else `default`)."""
        return self.ringtone or default

    def dtmf_method(self, default: str) -> str:
        """The DTMF sending method of this line (``dtmf_mode``, else `default`)."""
        return self.dtmf_mode or default

    @property
    def auth_name(self) -> str:
        """The user name for digest authentication (``auth_user``, else ``user``)."""
        return self.auth_user or self.user

    @property
    def key_label(self) -> str:
        """The text for the line key (``label``, else ``user``)."""
        return self.label or self.user

    @property
    def registrar_uri(self) -> str:
        """The registrar as ``sip:host:port`` (``;transport=tcp`` for TCP). Valid configs only."""
        return sip_uri(self.registrar, self.transport)

    @property
    def outbound_proxy_uri(self) -> str:
        """The outbound proxy as a loose-routing URI (``sip:host:port[;transport=tcp];lr``),
        or "" when there is none. Valid configs only."""
        if not self.outbound_proxy:
            return ""
        return sip_uri(self.outbound_proxy, self.transport) + ";lr"


DEFAULT_DIAL_PLAN: Final = "112|11414|90000|555|[1-9]xxx|0[1-9]x.T|00x.T|*x.T|#x.T"


@dataclass(frozen=True, kw_only=True)
class DeviceConfig:
    """The device as a whole: language, tones, clock and dialling."""

    language: str = field(default="sv", metadata=doc(
        "Language of the display and menus.", choices=("sv", "en")))
    tone_country: str = field(default="se", metadata=doc(
        "Country whose call-progress tones (dial, ringing, busy) the phone plays.",
        choices=("se", "no", "dk", "fi", "de", "gb", "us")))
    time_zone: str = field(default="Europe/Stockholm", metadata=doc(
        'IANA time zone for the clock and call history, e.g. "UTC".'))
    dial_plan: str = field(default=DEFAULT_DIAL_PLAN, metadata=doc(
        "Digit map deciding when a dialled number is complete. Alternatives are separated by "
        "'|'; 'x' is any digit, [1-5] or [135] a set of digits, '.' repeats the previous "
        "element 0 or more times, and a final 'T' means: complete after the interdigit "
        "timeout. Allowed characters: 0-9*#xX[]-.T|"))
    interdigit_timeout: float = field(default=4.0, metadata=doc(
        "Seconds without a key press after which a number matching a 'T' alternative is "
        "dialled.", min=1, max=30))
    no_answer_timeout: int = field(default=60, metadata=doc(
        'Seconds an outgoing call may ring; then it is cancelled and shown as "No answer".',
        min=10, max=600))
    voicemail_number: str = field(default="555", metadata=doc(
        "Number the voicemail key dials (digits, * and #); empty = no voicemail key."))
    ringtone: str = field(default="classic", metadata=doc(
        "Ring sound of incoming calls, played in the tone country's ring cadence.",
        choices=RINGTONE_NAMES))
    key_tones: bool = field(default=True, metadata=doc(
        "Sound on key presses while the handset, speaker or headset is open: the DTMF pair "
        "of 0-9, * and #, a short click for other keys."))
    max_calls: int = field(default=4, metadata=doc(
        "Calls the phone handles at once (pjsua2's hard limit is 4).", min=1, max=4))
    name: str = field(default="", metadata=doc("Device name shown on the console."))


@dataclass(frozen=True, kw_only=True)
class SipConfig:
    """The SIP stack: transport, identity towards peers, codecs and flood limits."""

    port: int = field(default=5060, metadata=doc(
        "Local SIP port (UDP and TCP); 0 = any free port.", min=0, max=65535))
    bind_address: str = field(default="0.0.0.0", metadata=doc(
        "Local IP address to listen on; 0.0.0.0 = all IPv4 addresses."))
    public_address: str = field(default="", metadata=doc(
        "Address (IP or host name) to put in Contact/Via instead of the local one, for NAT; "
        "empty = the local address."))
    user_agent: str = field(default="Luren", metadata=doc("User-Agent header value."))
    max_incoming_calls_per_second: int = field(default=10, metadata=doc(
        "Admission control: new incoming calls accepted per second; more are answered busy.",
        min=1, max=1000))
    codecs: list[str] = field(default_factory=lambda: ["PCMA", "PCMU", "G722"], metadata=doc(
        "Audio codecs offered and accepted, in order of preference; each at most once.",
        choices=("PCMA", "PCMU", "G722", "speex", "iLBC", "GSM", "L16"), min_items=1))
    dtmf_mode: str = field(default="rfc4733", metadata=doc(
        "How key presses are sent in a call: RTP events (RFC 4733), SIP INFO or in-band tones.",
        choices=("rfc4733", "info", "inband")))
    detect_inband_dtmf: bool = field(default=False, metadata=doc(
        "Also listen for DTMF tones in each call's audio (far ends that send digits in-band); "
        "costs about 2 % of a core per call."))


FEATURES: Final = ("park", "pickup", "directed_pickup", "intrusion", "group_login",
                   "group_logout")
KEY_ACTIONS: Final = ("", *FEATURES, "record", "dnd", "transfer", "conference", "hold", "mute",
                      "referral")


@dataclass(frozen=True, kw_only=True)
class CallsConfig:
    """Handling several calls: call waiting, do not disturb, forwarding, transfer, recording."""

    call_waiting: bool = field(default=True, metadata=doc(
        "Let a second call in while in a call (it beeps in the earpiece); off: busy."))
    dnd_action: str = field(default="reject", metadata=doc(
        "What do-not-disturb does with a call: reject it busy (486), or forward it to "
        "dnd_forward_to.", choices=("reject", "forward")))
    dnd_forward_to: str = field(default="", metadata=doc(
        "Number do-not-disturb forwards to (digits, * and #)."))
    vip_numbers: list[str] = field(default_factory=list, metadata=doc(
        "Callers (numbers) that ring through do-not-disturb."))
    forward_always: str = field(default="", metadata=doc(
        "Forward every call at once to this number (302 Moved Temporarily); empty = off."))
    forward_busy: str = field(default="", metadata=doc(
        "Forward calls that arrive while the phone is busy; empty = answer busy (486)."))
    forward_no_answer: str = field(default="", metadata=doc(
        "Forward calls not answered within forward_no_answer_after seconds; empty = off."))
    forward_no_answer_after: int = field(default=20, metadata=doc(
        "Seconds a call rings before forward_no_answer takes it.", min=5, max=120))
    ring_timeout: int = field(default=180, metadata=doc(
        "Seconds an incoming call may ring (or wait) unanswered before the phone answers it "
        "480 Temporarily Unavailable, should the caller's side never give up.",
        min=10, max=3600))
    transfer_timeout: int = field(default=30, metadata=doc(
        "Seconds to wait for the far end to report a transfer's outcome; then it has failed "
        "and the call comes back on hold.", min=5, max=120))
    recordings_max_mb: int = field(default=200, metadata=doc(
        "Space call recordings may take in the data directory; the oldest go first.",
        min=1, max=100000))
    default_role: str = field(default="", metadata=doc(
        "Name of the caller-ID role outgoing calls use (see [[roles]]); empty = the first "
        "role, or the line's own identity without roles."))


@dataclass(frozen=True, kw_only=True)
class VoicemailConfig:
    """The phone's own voicemail and touch-tone menus (docs/voicemail.md)."""

    enabled: bool = field(default=True, metadata=doc(
        "The phone answers for its user and keeps messages; off: voicemail_number dials the "
        "PBX's voicemail and calls are turned away as before."))
    answer_when_away: bool = field(default=True, metadata=doc(
        "Answer at once, with the referral, while the user's referral does not ring."))
    answer_when_busy: bool = field(default=True, metadata=doc(
        "Answer calls that find the phone busy (instead of 486), unless forward_busy is set."))
    answer_after: int = field(default=20, metadata=doc(
        "Seconds a call rings before the phone answers it; 0 = never (forward_no_answer, when "
        "set, goes first).", min=0, max=300))
    switchboard: str = field(default="", metadata=doc(
        'Number callers reach by pressing 1 ("press 1 for the switchboard"); empty = no key 1. '
        "Key 2 always leaves a message."))
    pin: str = field(default="", metadata=doc(
        "PIN (4-8 digits) for remote access: call your own line, press * during the "
        "announcement, enter the PIN and #. Empty = no remote access.", secret=True))
    referral_code: str = field(default="*21", metadata=doc(
        "Dialled on the phone, opens the touch-tone referral menu; empty = none."))
    language: str = field(default="", metadata=doc(
        "Language of the prompts; empty = the device language.", choices=("", "sv", "en")))
    menu_timeout: int = field(default=5, metadata=doc(
        "Seconds a menu waits for a key after its prompt.", min=2, max=30))
    min_message: int = field(default=2, metadata=doc(
        "Messages shorter than this many seconds are not kept.", min=0, max=30))
    max_message: int = field(default=120, metadata=doc(
        "Longest message in seconds; then the recording stops.", min=10, max=600))
    silence: int = field(default=5, metadata=doc(
        "Seconds of silence that end a message; 0 = off.", min=0, max=60))
    max_messages: int = field(default=50, metadata=doc(
        "Messages the mailbox keeps; when full, callers are told so and nothing is lost.",
        min=1, max=1000))
    max_minutes: int = field(default=60, metadata=doc(
        "Total minutes of messages the mailbox keeps.", min=1, max=6000))
    lockout_minutes: int = field(default=15, metadata=doc(
        "After 3 wrong PINs remote access is refused for this many minutes.", min=1, max=1440))
    prompts_dir: str = field(default="", metadata=doc(
        "Folder with the prompts (<lang>/<name>.wav); empty = the ones the set-up script "
        "generates beside the firmware."))


@dataclass(frozen=True, kw_only=True)
class ProvisioningConfig:
    """Where the phone gets its configuration (docs/provisioning.md)."""

    url: str = field(default="", metadata=doc(
        "Folder URL of this phone's provisioning files (common.toml, <model>.toml, "
        "<mac>.toml), e.g. https://prov.example.se/luren/; empty = not provisioned."))
    trusted_keys: list[str] = field(default_factory=list, metadata=doc(
        'Ed25519 public keys the files must be signed with, as "key-id=base64" (the raw 32 '
        "bytes); a file signed by any other key is refused."))
    require_signature: bool = field(default=True, metadata=doc(
        "Refuse unsigned files. Only for a lab: off, an unsigned file is used as it is."))
    ca_file: str = field(default="", metadata=doc(
        "PEM file of the CA the provisioning server's certificate must come from (pinning); "
        "empty = the system's trust store."))
    pin_sha256: list[str] = field(default_factory=list, metadata=doc(
        "SHA-256 fingerprints (hex) of the server certificate; if set, one must match."))
    client_cert: str = field(default="", metadata=doc(
        "PEM device certificate presented to the server (mutual TLS); empty = none."))
    client_key: str = field(default="", metadata=doc(
        "PEM private key of client_cert (empty: inside client_cert)."))
    username: str = field(default="", metadata=doc("HTTP digest user name; empty = none."))
    password: str = field(default="", metadata=doc("HTTP digest password.", secret=True))
    allow_http: bool = field(default=False, metadata=doc(
        "Allow plain http:// (a lab without TLS); never with pin_sha256."))
    model: str = field(default="", metadata=doc(
        "Model name of the <model>.toml file; empty = the board profile's name."))
    mac: str = field(default="", metadata=doc(
        "MAC address naming the <mac>.toml file; empty = the first network interface's."))
    timeout: int = field(default=10, metadata=doc(
        "Seconds a file may take to arrive.", min=1, max=120))
    discovery: list[str] = field(default_factory=list, metadata=doc(
        "Where to look for the server while url is empty, in order: dhcp (options 160, 114, "
        "66, 43 of the lease), pnp (SIP plug-and-play multicast), redirect (the redirect "
        "service at redirect_url, the device certificate as client certificate). A URL found "
        "is kept and tried first next time. Empty = no discovery (a factory image sets "
        '["dhcp", "pnp", "redirect"]).', choices=("dhcp", "pnp", "redirect")))
    redirect_url: str = field(default="", metadata=doc(
        "Redirect service the phone asks at first contact (GET <redirect_url>/redirect/v1/"
        "<mac>, authenticated by client_cert); empty = not asked."))
    redirect_ca_file: str = field(default="", metadata=doc(
        "PEM CA the redirect service's certificate must come from; empty = the system's "
        "trust store."))
    dhcp_leases: list[str] = field(default_factory=lambda: [
        "/var/lib/dhcp/dhclient*.leases", "/run/systemd/netif/leases/*",
        "/var/lib/dhcpcd/*.lease", "/run/luren/dhcp.json"], metadata=doc(
        "Lease files (glob patterns) read for DHCP options; the newest one counts."))
    pnp_https_only: bool = field(default=True, metadata=doc(
        "Plug-and-play: accept only https:// URLs (a plain http one is ignored)."))
    pnp_group: str = field(default="224.0.1.75:5060", metadata=doc(
        "Plug-and-play multicast group and port the SUBSCRIBE goes to."))
    pnp_interface: str = field(default="", metadata=doc(
        "Address of the interface plug-and-play sends from; empty = the sip bind address."))
    pnp_timeout: int = field(default=5, metadata=doc(
        "Seconds to wait for a plug-and-play answer.", min=1, max=60))
    resync_minutes: int = field(default=1440, metadata=doc(
        "Minutes between checks for new files while running; 0 = only at start.",
        min=0, max=43200))
    resync_spread_minutes: int = field(default=60, metadata=doc(
        "Up to this many minutes are added at random to each wait, so a thousand phones do "
        "not ask at the same moment.", min=0, max=1440))
    check_sync_reboot: bool = field(default=False, metadata=doc(
        "Restart after a check-sync NOTIFY that says reboot=true (the fetch happens either "
        "way). Off: reboot=true is logged and ignored."))


@dataclass(frozen=True, kw_only=True)
class FirmwareConfig:
    """Which firmware the phone should run (docs/provisioning.md, "Firmware updates")."""

    version: str = field(default="", metadata=doc(
        'The version the site wants, e.g. "1.4.0"; empty = keep what runs. When it differs '
        "from the running one, the image at url is installed into the other slot and the "
        "phone restarts into it once no call is going on."))
    url: str = field(default="", metadata=doc(
        "The signed image (relative to the provisioning URL, or absolute https)."))
    max_boot_tries: int = field(default=3, metadata=doc(
        "Boots a new firmware gets to register its lines before the phone goes back to the "
        "old one.", min=1, max=10))
    max_image_mb: int = field(default=256, metadata=doc(
        "Largest image accepted, in MiB.", min=1, max=4096))


@dataclass(frozen=True, kw_only=True)
class ConsoleConfig:
    """The technician's serial console (docs/console.md)."""

    port: str = field(default="", metadata=doc(
        'Where it listens: empty = the board profile\'s port; a device ("/dev/ttyUSB0"), a '
        'pyserial URL, "pty" (a pseudo-terminal, named in run/ready.json) or "off".'))
    password_hash: str = field(default="", repr=False, metadata=doc(
        "The technician password, as a scrypt hash (python -m firmware.console.auth hash); "
        "empty = a one-time code shown on the phone (Settings, Console code).", secret=True))
    idle_logout_minutes: int = field(default=10, metadata=doc(
        "Minutes without input before the console logs out.", min=1, max=240))


@dataclass(frozen=True, kw_only=True)
class HandsetConfig:
    """One cordless handset of a DECT base (docs/dect.md)."""

    number: int = field(metadata=doc(
        "The handset's number on the base, as it registered (1-6).", min=1, max=6))
    line: int = field(default=0, metadata=doc(
        "The line (1 = the first) it calls out on and rings for; handsets sharing a line ring "
        "together and the first to answer takes the call. 0 = internal calls only.",
        min=0, max=16))
    name: str = field(default="", metadata=doc(
        'Shown on the handset, e.g. "Anna"; empty = "Handset <number>".'))


@dataclass(frozen=True, kw_only=True)
class DectConfig:
    """The DECT base: its radio and its handsets (docs/dect.md)."""

    port: str = field(default="", metadata=doc(
        "The DECT radio module's serial port or pyserial URL; empty = the board profile's."))
    pin: str = field(default="0000", repr=False, metadata=doc(
        "System PIN a handset gives to register (4 digits). The default 0000 must be changed "
        "before a registration window can open.", secret=True))
    window_seconds: int = field(default=120, metadata=doc(
        "How long a registration window stays open.", min=10, max=600))
    open_window: bool = field(default=False, metadata=doc(
        "Open a registration window when this config is taken on (provisioning enrols new "
        "handsets this way); it closes by itself after window_seconds or one registration."))


@dataclass(frozen=True, kw_only=True)
class RoleConfig:
    """A caller-ID role ("Ring som"): who outgoing calls say they are from."""

    name: str = field(metadata=doc('Short name shown on the screen, e.g. "Vaxel".'))
    kind: str = field(default="direct", metadata=doc(
        "direct: the line's own number; switchboard or mobile: another number of yours; "
        "anonymous: no number shown (Privacy: id).",
        choices=("direct", "switchboard", "mobile", "anonymous")))
    number: str = field(default="", metadata=doc(
        "The number shown (From user) for switchboard and mobile; empty = the line's user."))
    display_name: str = field(default="", metadata=doc(
        "The name shown with it; empty = the line's display name."))
    prefix: str = field(default="", metadata=doc(
        "The PBX's own scheme instead: digits dialled before the number (e.g. \"*31#\"), "
        "From left as the line's."))


@dataclass(frozen=True, kw_only=True)
class FeaturesConfig:
    """The PBX's feature codes, dialled by the keys bound to them; empty = not offered."""

    park: str = field(default="", metadata=doc(
        "Call park: the call in progress is transferred to this code."))
    pickup: str = field(default="", metadata=doc("Pick up a call ringing in your group."))
    directed_pickup: str = field(default="", metadata=doc(
        "Pick up a call ringing at an extension: the code, then the extension."))
    intrusion: str = field(default="", metadata=doc(
        "Barge into a colleague's call: the code, then the extension."))
    group_login: str = field(default="", metadata=doc("Log in to your response group."))
    group_logout: str = field(default="", metadata=doc("Log out of your response group."))


@dataclass(frozen=True, kw_only=True)
class KeysConfig:
    """What the programmable keys do (empty = nothing)."""

    soft1: str = field(default="", metadata=doc("Soft key 1.", choices=KEY_ACTIONS))
    soft2: str = field(default="", metadata=doc("Soft key 2.", choices=KEY_ACTIONS))
    soft3: str = field(default="", metadata=doc("Soft key 3.", choices=KEY_ACTIONS))
    soft4: str = field(default="", metadata=doc("Soft key 4.", choices=KEY_ACTIONS))


@dataclass(frozen=True, kw_only=True)
class ReferralTypeConfig:
    """A referral status of the company's own, beside the built-in ones (Lunch, Möte ...)."""

    key: str = field(metadata=doc('Short id: a-z, 0-9, _ and -, e.g. "course".'))
    name_sv: str = field(metadata=doc('The Swedish name, e.g. "Kurs".'))
    name_en: str = field(metadata=doc('The English name, e.g. "Course".'))
    rings: bool = field(default=False, metadata=doc(
        "Whether calls ring while it lasts (available) or are turned away."))
    minutes: int = field(default=0, metadata=doc(
        "How long it lasts when chosen from the menu; 0 = until changed.", min=0, max=10080))


@dataclass(frozen=True, kw_only=True)
class GroupConfig:
    """A response group ("svarsgrupp") the user belongs to: logged in, its calls ring here."""

    name: str = field(metadata=doc('Shown on the screen, e.g. "Support".'))
    login_code: str = field(metadata=doc("The PBX's feature code that logs in to the group."))
    logout_code: str = field(metadata=doc("The PBX's feature code that logs out."))
    key: str = field(default="", metadata=doc(
        "The key that logs in and out (its LED shows the state): soft1-soft4 or line1-line16; "
        "empty = from the menu only."))


@dataclass(frozen=True, kw_only=True)
class BlfConfig:
    """A key showing a colleague's line (busy lamp field): idle, ringing or busy; a press
    calls them, or picks up the call ringing there."""

    key: str = field(metadata=doc("The key: soft1-soft4 or line1-line16."))
    user: str = field(metadata=doc('The colleague\'s extension, e.g. "1002".'))
    label: str = field(default="", metadata=doc("Text for the key; empty = the extension."))


@dataclass(frozen=True, kw_only=True)
class DirectoryConfig:
    """The company directory (docs/directory.md); the user's own contacts live in the data
    directory."""

    file: str = field(default="", metadata=doc(
        "The company directory file (XML, CSV or vCard), as provisioning delivers it; a "
        "relative path is in the data directory; empty = none."))
    ldap_url: str = field(default="", metadata=doc(
        "LDAP server for the company directory: ldap://host[:port], ldaps://host[:port], or "
        "ldap://host?starttls; used when `file` is empty; empty = no LDAP."))
    ldap_base: str = field(default="", metadata=doc(
        'Where to search, e.g. "ou=people,dc=example,dc=se".'))
    ldap_bind_dn: str = field(default="", metadata=doc(
        "Who the phone logs in as; empty = anonymously."))
    ldap_password: str = field(default="", repr=False, metadata=doc(
        "Password for ldap_bind_dn.", secret=True))
    ldap_filter: str = field(default="(objectClass=inetOrgPerson)", metadata=doc(
        "LDAP search filter choosing the entries to show."))


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """The simulated board's audio ends (used only when running with the sim board)."""

    mic_tone_hz: int = field(default=0, metadata=doc(
        "Frequency of a continuous sine played as the microphone; 0 = silence.",
        min=0, max=4000))
    mic_file: str = field(default="", metadata=doc(
        "WAV file played in a loop as the microphone; overrides mic_tone_hz."))
    record_earpiece: bool = field(default=True, metadata=doc(
        "Record what the earpiece/speaker would play to WAV files under the data directory."))


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    """The control API: a small authenticated HTTP API on the phone."""

    listen: str = field(default="127.0.0.1:8080", metadata=doc(
        "host:port the control API listens on (port 0 = any free port)."))
    token: str = field(default="", repr=False, metadata=doc(
        "Bearer token clients must send. Required when listen is not a loopback address.",
        secret=True))

    @property
    def host(self) -> str:
        """The host part of ``listen`` (IPv6 without brackets). Valid configs only."""
        return split_host_port(self.listen)[0]

    @property
    def port(self) -> int:
        """The port part of ``listen``. Valid configs only."""
        return split_host_port(self.listen)[1] or 0

    @property
    def is_loopback(self) -> bool:
        """Whether only this machine can reach the API. Valid configs only."""
        return is_loopback_host(self.host)


@dataclass(frozen=True, kw_only=True)
class PhoneConfig:
    """The whole phone configuration: one file, one instance."""

    device: DeviceConfig = field(default_factory=DeviceConfig, metadata=doc("Device settings."))
    sip: SipConfig = field(default_factory=SipConfig, metadata=doc("SIP stack settings."))
    lines: list[LineConfig] = field(default_factory=list, metadata=doc(
        "The SIP accounts; line users must be unique per registrar. At least one, except in a "
        "phone's own file when [provisioning] url or discovery is set (the lines come from the "
        "provisioning server; until then the phone says it waits for them).", max_items=16))
    calls: CallsConfig = field(default_factory=CallsConfig, metadata=doc(
        "Call waiting, do not disturb, forwarding, transfer, recording."))
    voicemail: VoicemailConfig = field(default_factory=VoicemailConfig, metadata=doc(
        "The phone's own voicemail and touch-tone menus."))
    features: FeaturesConfig = field(default_factory=FeaturesConfig, metadata=doc(
        "The PBX's feature codes."))
    keys: KeysConfig = field(default_factory=KeysConfig, metadata=doc("Programmable keys."))
    directory: DirectoryConfig = field(default_factory=DirectoryConfig, metadata=doc(
        "The company directory."))
    blf: list[BlfConfig] = field(default_factory=list, metadata=doc(
        "Busy lamp field keys (docs/blf.md); watched through the first line.", max_items=16))
    referral_types: list[ReferralTypeConfig] = field(default_factory=list, metadata=doc(
        "The company's own referral statuses, offered after the built-in ones.",
        max_items=16))
    groups: list[GroupConfig] = field(default_factory=list, metadata=doc(
        "Response groups the user belongs to.", max_items=8))
    roles: list[RoleConfig] = field(default_factory=list, metadata=doc(
        "Caller-ID roles, in the order the role key steps through them.", max_items=8))
    provisioning: ProvisioningConfig = field(default_factory=ProvisioningConfig, metadata=doc(
        "Where the phone gets its configuration."))
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig, metadata=doc(
        "Firmware updates (A/B slots)."))
    console: ConsoleConfig = field(default_factory=ConsoleConfig, metadata=doc(
        "The technician's serial console."))
    dect: DectConfig = field(default_factory=DectConfig, metadata=doc(
        "The DECT base's radio (board profile dect-base)."))
    handsets: list[HandsetConfig] = field(default_factory=list, metadata=doc(
        "A DECT base's handsets: each one's line and name.", max_items=6))
    sim: SimConfig = field(default_factory=SimConfig, metadata=doc("Simulated board audio."))
    api: ApiConfig = field(default_factory=ApiConfig, metadata=doc("Control API."))


def tables() -> list[tuple[str, type, bool]]:
    """The TOML tables in file order, as (name, class, is_array_of_tables)."""
    result = []
    for f in dataclasses.fields(PhoneConfig):
        is_array = getattr(f.type, "__origin__", None) is list
        cls = f.type.__args__[0] if is_array else f.type
        result.append((f.name, cls, is_array))
    return result


def field_rules(f: Field[Any]) -> list[str]:
    """Plain-language constraints of a field from its metadata, e.g. ["one of: udp, tcp"]."""
    meta = f.metadata
    rules = ["required"] if is_required(f) else []
    if "choices" in meta:
        each = "each one of" if getattr(f.type, "__origin__", None) is list else "one of"
        names = ", ".join(c or '""' for c in meta["choices"])
        rules.append(f"{each}: {names}")
    if "min" in meta or "max" in meta:
        rules.append(f"{meta.get('min', '-inf')} to {meta.get('max', 'inf')}")
    if "min_items" in meta or "max_items" in meta:
        low, high = meta.get("min_items", 0), meta.get("max_items")
        noun = "entry" if low == 1 else "entries"
        rules.append(f"{low} to {high} entries" if high else f"at least {low} {noun}")
    if meta.get("secret"):
        rules.append("secret")
    return rules
