"""The configuration reference (``docs/config.md``), generated from the schema.

Regenerate after changing the schema::

    .venv/bin/python -m firmware.config.docs > docs/config.md

A unit test fails while the committed file differs from ``render_markdown()``.
"""

import dataclasses
import sys
from dataclasses import Field
from typing import Any, get_origin

from firmware.config.load import toml_literal
from firmware.config.schema import default_of, field_rules, is_required, tables

_INTRO = """\
# Luren configuration reference

<!-- Generated from firmware/config/schema.py by `python -m firmware.config.docs`.
     Do not edit by hand: change the schema and regenerate. -->

A Luren phone is configured by one TOML file. The program that starts the phone passes the
file's path to `firmware.config.load_config()`, which reads it, checks every key and either
returns the whole configuration or refuses it with a list of every problem found, one per
line, naming the key (for example
`config.toml: lines[1].transport: must be one of udp, tcp (got "tls")`). A refused file is
never modified, and unknown keys are errors, so a misspelt key cannot silently do nothing.

The file is the whole configuration: a key left out takes the default listed below. Layering
(factory defaults < provisioned < local overrides) is planned but not implemented yet.

A minimal file needs only one `[[lines]]` table with `user` and `registrar`. A commented file
with every key at its default is generated from the schema by:

```sh
python -c "from firmware.config import dump_default_config; print(dump_default_config(), end='')"
```
"""

_EXAMPLE = """\
## Example

```toml
[device]
language = "en"
tone_country = "gb"
time_zone = "Europe/London"

[sip]
codecs = ["G722", "PCMA"]

[[lines]]
user = "1001"
registrar = "sip:pbx.example.se"
password = "s3cret"
display_name = "Reception"

[[lines]]
user = "1002"
registrar = "pbx.example.se:5060"
transport = "tcp"
label = "Support"

[api]
listen = "0.0.0.0:8080"
token = "a-long-random-string"
```
"""

_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def render_markdown() -> str:
    """The full reference: introduction, example, then one section per table."""
    sections = [_INTRO, _EXAMPLE]
    for name, cls, is_array in tables():
        sections.append(_section(name, cls, is_array))
    return "\n".join(sections)


def _section(name: str, cls: type, is_array: bool) -> str:
    """One table: heading, description and a row per key."""
    header = f"[[{name}]]" if is_array else f"[{name}]"
    rows = ["| Key | Type | Default | Allowed | Description |", "|---|---|---|---|---|"]
    rows += [_row(f) for f in dataclasses.fields(cls)]
    return f"## `{header}`\n\n{cls.__doc__}\n\n" + "\n".join(rows) + "\n"


def _row(f: Field[Any]) -> str:
    """A key's table row; ``|`` inside cells is escaped for Markdown tables."""
    default = "—" if is_required(f) else f"`{toml_literal(default_of(f))}`"
    allowed = "; ".join(field_rules(f)) or "—"
    cells = [f"`{f.name}`", _type_name(f.type), default, allowed, f.metadata["doc"]]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _type_name(kind: Any) -> str:
    """The TOML type of a schema type, e.g. ``array of strings``."""
    if get_origin(kind) is list:
        return f"array of {_type_name(kind.__args__[0])}s"
    return _TYPE_NAMES[kind]


def main() -> None:
    """Write the reference to standard output."""
    sys.stdout.write(render_markdown())


if __name__ == "__main__":
    main()
