"""The phone's configuration: one typed schema, loaded and validated from one TOML file.

>>> from firmware.config import load_config
>>> cfg = load_config(Path("/etc/luren/config.toml"))  # doctest: +SKIP
>>> cfg.lines[0].registrar_uri  # doctest: +SKIP
'sip:127.0.0.1:5060'
"""

from firmware.config.load import (
    REDACTED,
    ConfigError,
    ConfigProblem,
    config_to_dict,
    dial_plan_error,
    dump_default_config,
    load_config,
    parse_config,
)
from firmware.config.schema import (
    ApiConfig,
    CallsConfig,
    DeviceConfig,
    DirectoryConfig,
    FeaturesConfig,
    KeysConfig,
    LineConfig,
    PhoneConfig,
    RoleConfig,
    SimConfig,
    SipConfig,
    VoicemailConfig,
)

__all__ = [
    "REDACTED",
    "ApiConfig",
    "CallsConfig",
    "ConfigError",
    "ConfigProblem",
    "DeviceConfig",
    "DirectoryConfig",
    "FeaturesConfig",
    "KeysConfig",
    "LineConfig",
    "PhoneConfig",
    "RoleConfig",
    "SimConfig",
    "SipConfig",
    "VoicemailConfig",
    "config_to_dict",
    "dial_plan_error",
    "dump_default_config",
    "load_config",
    "parse_config",
]
