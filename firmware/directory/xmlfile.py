"""XML company directories: Luren's own format, and the Yealink (and Cisco) remote phonebooks.

Luren's format (elements and attributes are matched without regard to case):

    <?xml version="1.0" encoding="UTF-8"?>
    <directory>
      <contact id="anna.berg" favourite="no" vip="no">
        <name>Anna Berg</name>
        <number type="work">08-123 45 67</number>
        <number type="mobile">070-123 45 67</number>
        <number type="extension">4567</number>
        <company>Exempel AB</company>
        <department>Ekonomi</department>
        <group>Ledning</group>
        <note>Fri på fredagar</note>
      </contact>
    </directory>

`type` is work (the default), mobile, home, other or extension (Swedish words too: mobil,
hem, anknytning, ...); `<group>` may repeat; `id`, `favourite` and `vip` are optional.

Yealink / Cisco remote phonebook: `<YealinkIPPhoneDirectory>` (or `<CiscoIPPhoneDirectory>`)
holding `<DirectoryEntry><Name>..</Name><Telephone>..</Telephone>...</DirectoryEntry>`; the
first Telephone is the work number, the others "other", unless a `label` attribute says
otherwise (label="Mobile"). Also the Yealink phonebook `<YealinkIPPhoneBook><Menu Name="group">
<Unit Name=".." Phone1="office" Phone2="mobile" Phone3="other"/></Menu></YealinkIPPhoneBook>`.

For safety, a file that declares entities (`<!ENTITY ...>`) is refused.
"""

from __future__ import annotations

import pyexpat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .draft import Draft, is_yes, kind_of
from .model import DirectoryError

_CHUNK = 64 * 1024
ROOTS = {"directory": "xml", "yealinkipphonedirectory": "yealink-xml",
         "ciscoipphonedirectory": "yealink-xml", "yealinkipphonebook": "yealink-phonebook-xml"}


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    line: int
    text: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)

    def attr(self, name: str) -> str:
        """An attribute's value, its name matched without regard to case; "" if absent."""
        return next((v for k, v in self.attrs.items() if k.lower() == name), "")

    def content(self) -> str:
        return "".join(self.text)


class _Builder:
    """expat handlers: builds one entry at a time and turns it into a Draft when it closes."""

    def __init__(self, parser: pyexpat.XMLParserType, problems: list[str]) -> None:
        self.parser, self.problems = parser, problems
        self.stack: list[_Node] = []
        self.ready: list[Draft] = []
        self.dialect = ""
        self.count = 0
        self.reported: set[str] = set()

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        node = _Node(tag, attrs, self.parser.CurrentLineNumber)
        if not self.stack:
            self.dialect = _dialect(tag)
        else:
            self.stack[-1].children.append(node)
        self.stack.append(node)

    def data(self, text: str) -> None:
        if len(self.stack) > 1:
            self.stack[-1].text.append(text)

    def end(self, tag: str) -> None:
        node = self.stack.pop()
        convert = _ENTRY[self.dialect].get(node.tag.lower())
        if convert is not None and self.stack:
            self.count += 1
            self.ready.append(convert(self, node, f"entry {self.count} (line {node.line})"))
            self.stack[-1].children.pop()

    def unknown(self, node: _Node) -> None:
        """Report an element the format does not use, once per name."""
        if node.tag.lower() not in self.reported:
            self.reported.add(node.tag.lower())
            self.problems.append(f"line {node.line}: <{node.tag}> is not a directory field: "
                                 "ignored (said once)")


def _refuse_entities(*_args: object) -> None:
    raise DirectoryError("it declares XML entities (<!ENTITY ...>), which the phone refuses "
                         "for safety")


def _dialect(root: str) -> str:
    dialect = ROOTS.get(root.lower())
    if dialect is None:
        raise DirectoryError(f"the XML root element is <{root}>; the phone reads <directory>, "
                             "<YealinkIPPhoneDirectory>, <CiscoIPPhoneDirectory> and "
                             "<YealinkIPPhoneBook>")
    return dialect


def _luren(builder: _Builder, node: _Node, where: str) -> Draft:
    draft = Draft(where=where, uid=node.attr("id"), favourite=is_yes(node.attr("favourite")),
                  vip=is_yes(node.attr("vip")))
    for child in node.children:
        tag, text = child.tag.lower(), child.content()
        if tag == "name":
            draft.name = text
        elif tag == "number":
            draft.numbers.append((_kind(builder, child, "work"), text))
        elif tag in ("company", "department", "note"):
            setattr(draft, tag, text)
        elif tag == "group":
            draft.groups.append(text)
        else:
            builder.unknown(child)
    return draft


def _kind(builder: _Builder, node: _Node, default: str) -> str:
    word = node.attr("type") or node.attr("kind") or node.attr("label")
    kind = kind_of(word) if word else default
    if kind is None:
        builder.problems.append(f"line {node.line}: number type “{word}” is not work, mobile, "
                                "home, other or extension: taken as other")
        return "other"
    return kind


def _yealink(builder: _Builder, node: _Node, where: str) -> Draft:
    draft = Draft(where=where)
    for child in node.children:
        tag = child.tag.lower()
        if tag == "name":
            draft.name = child.content()
        elif tag == "telephone":
            default = "other" if draft.numbers else "work"
            draft.numbers.append((_kind(builder, child, default), child.content()))
        else:
            builder.unknown(child)
    return draft


def _unit(builder: _Builder, node: _Node, where: str) -> Draft:
    menu = next((n for n in reversed(builder.stack) if n.tag.lower() == "menu"), None)
    phones = (("work", "phone1"), ("mobile", "phone2"), ("other", "phone3"))
    return Draft(where=where, name=node.attr("name"),
                 numbers=[(kind, node.attr(key)) for kind, key in phones],
                 groups=[menu.attr("name")] if menu is not None and menu.attr("name") else [])


_Convert = Callable[[_Builder, _Node, str], Draft]
_ENTRY: dict[str, dict[str, _Convert]] = {
    "xml": {"contact": _luren},
    "yealink-xml": {"directoryentry": _yealink},
    "yealink-phonebook-xml": {"unit": _unit},
}


def _parser(problems: list[str]) -> tuple[pyexpat.XMLParserType, _Builder]:
    parser = pyexpat.ParserCreate()
    parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
    builder = _Builder(parser, problems)
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = _refuse_entities
    return parser, builder


class XmlReader:
    """Reads one XML directory; `dialect` names its format once reading has begun."""

    def __init__(self, text: str, problems: list[str]) -> None:
        self.text, self.problems = text, problems
        self.parser, self.builder = _parser(problems)

    @property
    def dialect(self) -> str:
        """"xml", "yealink-xml" or "yealink-phonebook-xml" ("" before the root element)."""
        return self.builder.dialect

    def drafts(self) -> Iterator[Draft]:
        """Yield one draft per entry; a break in the XML ends the file with a problem."""
        parser, builder = self.parser, self.builder
        try:
            for offset in range(0, len(self.text), _CHUNK):
                parser.Parse(self.text[offset:offset + _CHUNK], False)
                yield from _take(builder)
            parser.Parse("", True)
        except pyexpat.ExpatError as error:
            where = f"line {error.lineno}, column {error.offset + 1}"
            reason = pyexpat.ErrorString(error.code)
            if not builder.count:
                raise DirectoryError(f"not valid XML: {where}: {reason}") from None
            self.problems.append(f"{where}: the XML is broken here ({reason}): the rest of "
                                 "the file is skipped")
        yield from _take(builder)


def _take(builder: _Builder) -> list[Draft]:
    ready, builder.ready = builder.ready, []
    return ready
