"""The directory (firmware/directory/): the file formats and their problems, search and
ranking, caller lookup, personal contacts on disk, and multi-tap entry.

Sample files are in tests/data/directory/ (Swedish names, UTF-8 unless the name says
otherwise); broken inputs are made here.
"""

from __future__ import annotations

import io
import json
import random
import time
from pathlib import Path

import pytest

from firmware.directory import (
    Contact,
    Directory,
    DirectoryError,
    MultiTap,
    Number,
    PersonalContacts,
    load_directory,
    normalise_number,
    parse_directory,
    read_limited,
    sort_key,
    t9,
)
from firmware.directory import personal as personal_module

DATA = Path(__file__).parent.parent / "data" / "directory"


def load(name: str):
    return load_directory(DATA / name)


def by_name(contacts: list[Contact] | tuple[Contact, ...]) -> dict[str, Contact]:
    return {c.name: c for c in contacts}


def numbers(contact: Contact) -> list[tuple[str, str]]:
    return [(n.kind, n.value) for n in contact.numbers]


def person(name: str, *values: str, favourite: bool = False, vip: bool = False,
           cid: str | None = None, groups: tuple[str, ...] = ()) -> Contact:
    return Contact(id=cid or f"c-{name}", name=name,
                   numbers=tuple(Number("work", v) for v in values),
                   favourite=favourite, vip=vip, groups=groups)


# -- the formats ------------------------------------------------------------------------------


def test_luren_xml_sample() -> None:
    result = load("company.xml")
    assert (result.format, result.encoding, result.problems) == ("xml", "utf-8", [])
    people = by_name(result.contacts)
    anna = people["Anna Berg"]
    assert anna.id == "c:anna.berg"
    assert numbers(anna) == [("work", "08-123 45 67"), ("mobile", "070-123 45 67"),
                             ("extension", "4567")]
    assert (anna.company, anna.department, anna.groups, anna.note) == (
        "Exempel AB", "Ekonomi", ("Ledning",), "Fri på fredagar")
    asa = people["Åsa Öberg"]
    assert asa.vip and not asa.favourite
    assert numbers(asa) == [("work", "+46 8 123 45 10"), ("extension", "4510")]
    assert numbers(people["Émile Ängström"]) == [("mobile", "073-555 12 12")]
    assert numbers(people["Britt-Marie Åberg"]) == [("work", "08-123 45 90"),
                                                    ("home", "08-660 12 34")]
    assert "Jörgen Müller & Co" in people
    assert all(c.source == "company" for c in result.contacts)


def test_yealink_directory_sample() -> None:
    result = load("yealink.xml")
    assert result.format == "yealink-xml"
    people = by_name(result.contacts)
    assert numbers(people["Lars Lindqvist"]) == [("work", "08-123 45 20"),
                                                 ("other", "070-222 33 44")]
    assert numbers(people["Karin Söderström"]) == [("mobile", "076-111 22 33"),
                                                   ("work", "08-123 45 21")]
    assert "08-123 45 99" in people  # no name: shown as its number
    assert result.problems == [
        "entry 4 (line 17): no name: shown as its number 08-123 45 99",
        "entry 5 (line 21): Ingen Nummer: no number: skipped",
    ]


def test_yealink_phonebook_sample_takes_groups_from_menus() -> None:
    result = load("yealink-phonebook.xml")
    assert result.format == "yealink-phonebook-xml"
    people = by_name(result.contacts)
    assert numbers(people["Olle Ström"]) == [("work", "08-123 45 30"), ("mobile", "070-300 40 50")]
    assert people["Olle Ström"].groups == ("Sälj",)
    assert people["Supportlinjen"].groups == ("Support",)
    assert result.problems == []


def test_csv_sample_with_swedish_headers_merges_and_reports() -> None:
    result = load("company.csv")
    assert (result.format, result.encoding) == ("csv", "utf-8")
    people = by_name(result.contacts)
    assert list(people) == ["Anna Berg", "Åsa Öberg", "Per Ekström", "08-123 45 12"]
    anna = people["Anna Berg"]
    assert numbers(anna) == [("work", "08-123 45 67"), ("mobile", "070-123 45 67"),
                             ("extension", "4567")]
    assert anna.groups == ("Ledning", "Ekonomi", "Fackklubben")  # merged from line 8
    assert people["Åsa Öberg"].note == "VD; ring före 9"  # quoted delimiter
    assert result.problems == [
        "line 6: Sven Svensson: no number: skipped",
        "line 7: no name: shown as its number 08-123 45 12",
        "line 8: same as line 2 (Anna Berg): merged",
        "line 9: “08-12x3” is not a phone number: left out",
        "line 9: Olof Ärlig: no number: skipped",
    ]


def test_csv_with_bom_comma_and_first_and_last_name_columns() -> None:
    result = load("company-bom.csv")
    assert result.encoding == "utf-8-sig"
    people = by_name(result.contacts)
    assert list(people) == ["Ulla Hägg", "Kjell-Åke Nyström", "Ebba von Ärenhielm"]
    assert people["Kjell-Åke Nyström"].company == "Exempel AB, Göteborg"
    assert numbers(people["Kjell-Åke Nyström"]) == [("mobile", "070-600 60 60")]
    assert result.problems == ["line 1: column 6 “Fax” is not a directory field: ignored"]


def test_csv_in_cp1252_is_read_and_reported() -> None:
    result = load("company-cp1252.csv")
    assert result.encoding == "cp1252"
    assert [c.name for c in result.contacts] == ["Märta Wästberg", "Örjan Åström",
                                                 "Hélène Dubois"]
    assert len(result.problems) == 1
    assert result.problems[0].startswith("line 2: the file is not UTF-8 (byte 0xE4 here): "
                                         "read it as Windows-1252 (cp1252)")


def test_bytes_that_are_not_cp1252_fall_back_to_latin1() -> None:
    result = parse_directory(b"name;work\nAnna Berg;0812\n" + b"B\x81rje;0813\n",
                             "x.csv")
    assert result.encoding == "latin-1"
    assert "line 3: the file is not UTF-8" in result.problems[0]
    assert "ISO-8859-1" in result.problems[0]
    assert len(result.contacts) == 2


def test_utf16_tab_separated_excel_unicode_text() -> None:
    text = "Namn\tMobil\r\nÅsa Öberg\t070-123 45 67\r\n"
    result = parse_directory(text.encode("utf-16"), "export.txt")
    assert result.encoding == "utf-16"
    assert numbers(result.contacts[0]) == [("mobile", "070-123 45 67")]
    assert result.contacts[0].name == "Åsa Öberg"


def test_vcard_sample_folded_lines_several_tels_and_versions() -> None:
    result = load("company.vcf")
    assert result.format == "vcard"
    people = by_name(result.contacts)
    anna = people["Anna Berg"]
    assert anna.id == "c:7d1f9a2e-1111-4c2b-9a53-000000000001"
    assert numbers(anna) == [("work", "+46 8 123 45 67"), ("mobile", "070-123 45 67"),
                             ("home", "08-640 11 22")]
    assert (anna.company, anna.department) == ("Exempel AB", "Ekonomi")
    assert anna.groups == ("Ledning", "Ekonomi")
    assert anna.note == "Fri på fredagar, jobbar hemifrån\nmåndagar."
    asa = people["Åsa Öberg-Lindström"]  # FN folded over two lines
    assert numbers(asa) == [("work", "08-123 45 10"), ("extension", "4510")]
    assert asa.note.endswith("vikta rader fogas ihop rätt.")
    assert numbers(people["Jonas Björk"]) == [("mobile", "+46-70-987-65-43"),
                                              ("work", "+46-8-123-45-13")]
    lena = people["Lena Åkesson med ett väldigt långt namn"]  # 2.1 quoted-printable
    assert numbers(lena) == [("work", "08-123 45 14"), ("mobile", "070-111 00 14")]
    assert "Taxi Stockholm" in people
    assert result.problems == [
        "line 10: fax or pager number 08-123 45 68 left out",
        "card 5 (line 42): no name: named after its organisation Taxi Stockholm",
        "card 6 (line 48): Utan Nummer: no number: skipped",
    ]


def test_vcard_21_quoted_printable_without_charset() -> None:
    data = (b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN;ENCODING=QUOTED-PRINTABLE:=D6rjan =C5str=F6m\r\n"
            b"TEL;HOME:08-12 34 56\r\nEND:VCARD\r\n")
    result = parse_directory(data, "export.vcf")
    assert [c.name for c in result.contacts] == ["Örjan Åström"]
    assert numbers(result.contacts[0]) == [("home", "08-12 34 56")]


def test_vcard_without_end_is_used_and_reported() -> None:
    data = b"BEGIN:VCARD\nVERSION:3.0\nFN:Per Ek\nTEL:0812\n"
    result = parse_directory(data, "one.vcf")
    assert [c.name for c in result.contacts] == ["Per Ek"]
    assert result.problems == ["card 1 (line 1): no END:VCARD at the end of the file: used anyway"]


def test_xml_declared_latin1_is_decoded_by_its_declaration() -> None:
    data = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<directory><contact>'
            '<name>Åsa Öberg</name><number>0812</number></contact></directory>'
            ).encode("latin-1")
    result = parse_directory(data, "dir.xml")
    assert [c.name for c in result.contacts] == ["Åsa Öberg"]
    assert result.problems == []


def test_xml_not_in_utf8_without_declaration_is_reported() -> None:
    data = ("<directory><contact><name>Åsa Öberg</name><number>0812</number></contact>"
            "</directory>").encode("cp1252")
    result = parse_directory(data, "dir.xml")
    assert [c.name for c in result.contacts] == ["Åsa Öberg"]
    assert "not UTF-8" in result.problems[0]


def test_xml_unknown_child_and_number_type_are_reported_once() -> None:
    data = ("<directory>"
            + "<contact><name>A B</name><email>a@b</email><number type='fax'>0812</number>"
              "</contact>" * 2 + "</directory>").encode()
    result = parse_directory(data, "dir.xml")
    assert result.problems[0] == "line 1: <email> is not a directory field: ignored (said once)"
    assert "number type “fax” is not work, mobile, home, other or extension" in result.problems[1]
    assert "same as entry 1" in result.problems[-1]


def test_duplicate_ids_get_another_id() -> None:
    data = (b"<directory><contact id='x'><name>A</name><number>1</number></contact>"
            b"<contact id='x'><name>B</name><number>2</number></contact></directory>")
    result = parse_directory(data, "dir.xml")
    assert result.contacts[0].id == "c:x"
    assert result.contacts[1].id.startswith("c-")
    assert result.problems == ["entry 2 (line 1): id “x” is also used by entry 1 (line 1): "
                               "given another id"]


def test_ids_stay_when_numbers_change() -> None:
    before = parse_directory(b"name;work\nPer Ek;0812\nPer Ek;0913\n", "a.csv")
    after = parse_directory(b"name;work\nPer Ek;0814\nPer Ek;0915\n", "a.csv")
    assert [c.id for c in before.contacts] == [c.id for c in after.contacts]
    assert len({c.id for c in before.contacts}) == 2


# -- files that cannot be used, or only partly ------------------------------------------------


def test_broken_xml_keeps_entries_before_the_break() -> None:
    result = load("broken.xml")
    assert [c.name for c in result.contacts] == ["Anna Berg", "Åsa Öberg"]
    assert result.problems == ["line 5, column 66: the XML is broken here (mismatched tag): "
                               "the rest of the file is skipped"]


@pytest.mark.parametrize(("data", "name", "words"), [
    (b"", "dir.xml", "dir.xml: the file is empty"),
    (b" \r\n\t ", "dir.csv", "dir.csv: the file is empty"),
    (b"<directory><contact><name>A</nam></contact>", "d.xml", "d.xml: not valid XML: line 1"),
    (b"<phonebook/>", "d.xml", "the XML root element is <phonebook>"),
    (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><directory/>', "d.xml",
     "declares XML entities"),
    (b"just some words", "notes", "cannot tell its format"),
    (b"just some words", "d.vcf", "it is named .vcf but does not hold vCard"),
    (b"PK\x03\x04rest of a workbook", "d.csv", "save it as “CSV UTF-8”"),
    (b"a;b\x00;c\n", "d.csv", "binary data"),
    (b"Fax;E-post\n0812;a@b\n", "d.csv", "the first line must name the columns"),
])
def test_unusable_files_raise_directory_error(data: bytes, name: str, words: str) -> None:
    with pytest.raises(DirectoryError) as caught:
        parse_directory(data, name)
    assert words in str(caught.value)


def test_header_only_csv_is_an_empty_directory_with_a_problem() -> None:
    result = parse_directory(b"name;work\n", "d.csv")
    assert result.contacts == []
    assert result.problems == ["the file holds no usable entries"]


def test_extra_fields_on_a_row_are_reported() -> None:
    result = parse_directory(b"name;work\nPer Ek;0812;oops\n", "d.csv")
    assert result.problems == ["line 2: 3 fields where the header has 2: the extra ones are "
                               "ignored"]


def test_file_named_csv_holding_xml_is_read_as_xml() -> None:
    result = parse_directory((DATA / "company.xml").read_bytes(), "phonebook.csv")
    assert len(result.contacts) == 6
    assert result.problems == ["the file is named .csv but holds XML: read as XML"]


def test_50_mb_file_is_refused_quickly_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with open(path, "wb") as fh:
        fh.write(b"name;work\n")
        fh.truncate(50 * 1024 * 1024)  # sparse: nothing held in memory, nothing written
    start = time.monotonic()
    with pytest.raises(DirectoryError) as caught:
        load_directory(path)
    assert time.monotonic() - start < 0.5
    assert str(caught.value) == ("huge.csv: the file is 50.0 MB; the phone takes directory "
                                 "files of up to 10 MB: nothing was read")


def test_download_over_the_limit_stops_reading_early() -> None:
    class Endless(io.RawIOBase):
        def __init__(self) -> None:
            self.served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            buffer[:] = b"x" * len(buffer)
            self.served += len(buffer)
            return len(buffer)

    stream = Endless()
    with pytest.raises(DirectoryError, match="more than 1 MB"):
        read_limited(stream, 1024 * 1024, "phonebook.xml")  # type: ignore[arg-type]
    assert stream.served <= 1024 * 1024 + 1
    assert read_limited(io.BytesIO(b"abc"), 3) == b"abc"


def test_bytes_over_the_limit_are_refused() -> None:
    with pytest.raises(DirectoryError) as caught:
        parse_directory(b"name;work\n" + b"A;1\n" * 400, "d.csv", max_bytes=1024)
    assert str(caught.value) == ("d.csv: the file is 1.6 KB; the phone takes directory files "
                                 "of up to 1 KB: nothing was read")


def test_entries_over_the_limit_are_skipped_with_a_problem() -> None:
    data = "name;work\n" + "".join(f"Person {i};08{i:06d}\n" for i in range(30))
    result = parse_directory(data.encode(), "d.csv", max_entries=10)
    assert len(result.contacts) == 10
    assert result.problems == ["line 12 and after: skipped: the phone keeps at most 10 entries "
                               "from one directory file"]


def test_problems_are_capped() -> None:
    data = "name;work\n" + "Nobody;\n" * 300
    result = parse_directory(data.encode(), "d.csv")
    assert len(result.problems) == 201
    assert result.problems[-1] == "… and 101 more problems"


def test_damaged_files_never_raise_anything_but_directory_error() -> None:
    rng = random.Random(7)
    for path in sorted(DATA.iterdir()):
        original = path.read_bytes()
        for _ in range(25):
            data = bytearray(original[:rng.randrange(len(original) + 1)])
            for _ in range(rng.randrange(4)):
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            try:
                result = parse_directory(bytes(data), path.name)
            except DirectoryError:
                continue
            assert all(isinstance(p, str) for p in result.problems)


# -- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "normal"), [
    ("08-123 45 67", "081234567"),
    ("+46 8 123 45 67", "081234567"),
    ("+46 (0)8 123 45 67", "081234567"),
    ("0046 8 1234567", "081234567"),
    ("+46 08-123 45 67", "081234567"),
    ("tel:+46-8-123-45-67", "081234567"),
    ("sip:+4681234567@pbx.example.se;user=phone", "081234567"),
    ("070–123 45 67", "0701234567"),
    ("+47 22 12 34 56", "+4722123456"),
    ("4567", "4567"),
    ("*21#", "*21#"),
])
def test_normalise_number(written: str, normal: str) -> None:
    assert normalise_number(written) == normal


# -- search -----------------------------------------------------------------------------------


@pytest.fixture
def company() -> list[Contact]:
    return load("company.xml").contacts


@pytest.fixture
def personal(tmp_path: Path) -> PersonalContacts:
    return PersonalContacts(tmp_path / "contacts.json")


def test_t9_keys_follow_the_swedish_keypad() -> None:
    assert t9("Åsa") == "272" and t9("Ärla") == "2752"
    assert t9("Öberg") == "62374"
    assert t9("Émile") == "36453"
    assert t9("Müller") == "685537"
    assert t9("O'Brien 2") == "6274362"


def test_search_t9_matches_any_name_word_and_folds_accents(company: list[Contact]) -> None:
    directory = Directory(company)
    assert [c.name for c in directory.search_t9("2662")] == ["Anna Berg"]
    assert [c.name for c in directory.search_t9("62374")] == ["Åsa Öberg"]  # Ö on 6
    assert [c.name for c in directory.search_t9("272")] == ["Åsa Öberg"]  # Å on 2
    assert [c.name for c in directory.search_t9("3645")] == ["Émile Ängström"]  # É on 3
    assert [c.name for c in directory.search_t9("6855")] == ["Jörgen Müller & Co"]  # Ü on 8
    assert [c.name for c in directory.search_t9("62743")] == ["Britt-Marie Åberg"]
    assert [c.name for c in directory.search_t9("2748862743")] == ["Britt-Marie Åberg"]
    assert directory.search_t9("") == [] and directory.search_t9("*#") == []
    assert [c.name for c in directory.search_t9("2-6-6-2")] == ["Anna Berg"]


def test_search_t9_finds_digits_anywhere_in_a_number(company: list[Contact]) -> None:
    directory = Directory(company)
    assert [c.name for c in directory.search_t9("0701234")] == ["Anna Berg"]
    assert [c.name for c in directory.search_t9("66012")] == ["Britt-Marie Åberg"]  # home
    assert [c.name for c in directory.search_t9("317001234")] == ["Jörgen Müller & Co"]
    assert len(directory.search_t9("08123", limit=3)) == 3


RANKED = [
    person("Bo Anna Lind", "0811"),             # middle word: tier 1
    person("Anna Berg", "0812"),
    person("Carl Ström", "08-266 20 00"),      # "2662" only in the number
    person("Åke Andersson", "0813"),
    person("Anders Zetterlund", "0814"),
    person("Ärla Ek", "0815"),
    person("Öjvind Al", "0816", favourite=True),
    person("Dan Bengtsson", "0817"),
]


def test_ranking_favourites_then_first_or_surname_then_swedish_order() -> None:
    directory = Directory(RANKED)
    assert [c.name for c in directory.search_text("a")] == [
        "Öjvind Al",           # favourite (surname Al)
        "Anders Zetterlund", "Anna Berg", "Åke Andersson", "Ärla Ek",  # å, ä after z
        "Bo Anna Lind",        # matched on a middle word
    ]
    assert [c.name for c in directory.search_t9("2662")] == [
        "Anna Berg", "Bo Anna Lind", "Carl Ström"]


def test_a_favourite_matched_by_number_still_comes_first() -> None:
    contacts = [c if c.name != "Carl Ström" else person("Carl Ström", "08-266 20 00",
                                                        favourite=True) for c in RANKED]
    directory = Directory(contacts)
    assert [c.name for c in directory.search_t9("2662")] == [
        "Carl Ström", "Anna Berg", "Bo Anna Lind"]


def test_swedish_alphabetical_order() -> None:
    names = ["Östen", "Zeta", "Åsa", "Élise", "Ärla", "Anna", "Eva", "Mårten", "Müller", "Myhr"]
    directory = Directory(person(n, "0812") for n in names)
    assert [c.name for c in directory.contacts] == [
        "Anna", "Élise", "Eva", "Myhr", "Müller", "Mårten", "Zeta", "Åsa", "Ärla", "Östen"]
    assert sorted(["ö", "z", "å", "ä"], key=sort_key) == ["z", "å", "ä", "ö"]


def test_search_text_is_case_and_accent_insensitive_prefix(company: list[Contact]) -> None:
    directory = Directory(company)
    assert [c.name for c in directory.search_text("ASA OBERG")] == ["Åsa Öberg"]
    assert [c.name for c in directory.search_text("émi")] == ["Émile Ängström"]
    assert [c.name for c in directory.search_text("emi")] == ["Émile Ängström"]
    assert [c.name for c in directory.search_text("anna b")] == ["Anna Berg"]
    assert directory.search_text("anna x") == []
    assert directory.search_text("erg") == []  # a prefix, not a substring
    assert directory.search_text("  ") == []


def test_search_text_number_query(company: list[Contact]) -> None:
    directory = Directory(company)
    assert [c.name for c in directory.search_text("+46 70 123")] == ["Anna Berg"]
    assert [c.name for c in directory.search_text("070-123")] == ["Anna Berg"]


def test_numbers_are_searched_from_the_third_digit(company: list[Contact]) -> None:
    directory = Directory(company)
    assert directory.search_t9("12") == []
    assert directory.search_text("08") == []
    assert len(directory.search_t9("123")) == 5
    assert len(directory.search_text("08 1")) == 4  # "081" in four numbers


def test_limit_is_respected() -> None:
    directory = Directory(person(f"Anna {i:03d}", f"08{i:04d}") for i in range(100))
    assert len(directory.search_t9("2", limit=5)) == 5
    assert len(directory.search_text("anna")) == 20


def test_t9_on_a_large_directory_uses_the_index() -> None:
    rng = random.Random(3)
    first = ["Anna", "Åsa", "Erik", "Örjan", "Karin", "Per"]
    last = ["Berg", "Öberg", "Ek", "Åström", "Lind"]
    contacts = [person(f"{rng.choice(first)} {rng.choice(last)}", f"08{i:06d}", cid=f"c{i}")
                for i in range(3000)]
    directory = Directory(contacts)
    found = directory.search_t9("62374", limit=3000)
    expected = [c for c in contacts if "62374" in (t9(c.name.split()[1]), t9(c.name.split()[0]))
                or "62374" in c.numbers[0].value]
    assert {c.id for c in found} == {c.id for c in expected}
    assert [c.name for c in found] == sorted((c.name for c in found), key=sort_key)


# -- callers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["+46 8 123 45 67", "+4681234567", "0046812345 67",
                                    "08-123 45 67", "sip:+4681234567@pbx.example.se", "4567",
                                    "+46701234567"])
def test_lookup_number_normalises(company: list[Contact], caller: str) -> None:
    contact = Directory(company).lookup_number(caller)
    assert contact is not None and contact.name == "Anna Berg"


def test_lookup_unknown_and_shared_numbers() -> None:
    switchboard = "08-123 45 00"
    directory = Directory([person("Anna Berg", "0812", switchboard),
                           person("Per Ek", "0813", switchboard)])
    assert directory.lookup_number("+46 8 999 99 99") is None
    assert directory.lookup_number(switchboard) is None  # names nobody rather than the wrong one
    assert directory.lookup_number("") is None


def test_personal_contacts_name_callers_before_company(company: list[Contact],
                                                       personal: PersonalContacts) -> None:
    personal.add("Mamma", [Number("mobile", "+46 70 123 45 67")])
    directory = Directory(company, personal)
    assert directory.lookup_number("070-123 45 67").name == "Mamma"  # type: ignore[union-attr]


def test_is_vip(company: list[Contact], personal: PersonalContacts) -> None:
    directory = Directory(company, personal)
    assert directory.is_vip("+46 8 123 45 10")  # Åsa Öberg, vip in the file
    assert directory.is_vip("4510")
    assert not directory.is_vip("08-123 45 67")
    assert not directory.is_vip("0899")
    personal.set_vip(directory.lookup_number("08-123 45 67").id)  # type: ignore[union-attr]
    assert directory.is_vip("08-123 45 67")


# -- favourites, groups, marks ----------------------------------------------------------------


def test_favourites_groups_and_marks_on_company_contacts(company: list[Contact],
                                                         personal: PersonalContacts) -> None:
    directory = Directory(company, personal)
    assert directory.favourites() == []
    assert directory.groups() == ["Ledning"]
    vaxeln = directory.search_text("växeln")[0]
    personal.set_favourite(vaxeln.id)
    personal.add("Åsa Privat", [Number("mobile", "070-000 00 01")], groups=["Familj"],
                 favourite=True)
    personal.add_group("Tomma")
    assert [c.name for c in directory.favourites()] == ["Växeln", "Åsa Privat"]
    assert directory.get(vaxeln.id).favourite  # type: ignore[union-attr]
    assert [c.name for c in directory.search_t9("2")][:2] == ["Åsa Privat", "Anna Berg"]
    assert directory.search_t9("123")[0].name == "Växeln"  # a favourite, by number
    assert directory.search_t9("8")[0].name == "Växeln"  # favourite first
    assert directory.groups() == ["Familj", "Ledning", "Tomma"]
    assert [c.name for c in directory.in_group("ledning")] == ["Anna Berg", "Åsa Öberg"]
    personal.set_favourite(vaxeln.id, False)
    assert [c.name for c in directory.favourites()] == ["Åsa Privat"]
    assert len(directory.contacts) == 7


def test_set_company_replaces_the_company_contacts(company: list[Contact]) -> None:
    directory = Directory(company)
    directory.set_company(load("yealink.xml").contacts)
    assert directory.search_text("anna") == []
    assert [c.name for c in directory.search_text("göran")] == ["Göran Ek"]


# -- personal contacts on disk ----------------------------------------------------------------


def test_personal_contacts_persist(tmp_path: Path) -> None:
    path = tmp_path / "contacts.json"
    store = PersonalContacts(path)
    mamma = store.add(" Mamma ", [Number("mobile", "070-111 22 33")], groups=["Familj"],
                      note="Ring på söndagar")
    kalle = store.add("", [Number("home", "08-12 34 56")])
    assert kalle.name == "08-12 34 56"
    store.update(kalle.id, name="Kalle", vip=True)
    store.set_favourite(mamma.id)
    store.set_vip("c:anna.berg")
    store.delete(kalle.id)
    assert store.revision == 6
    again = PersonalContacts(path)
    assert again.problems == []
    assert again.contacts == (Contact(id=mamma.id, name="Mamma",
                                      numbers=(Number("mobile", "070-111 22 33"),),
                                      groups=("Familj",), note="Ring på söndagar",
                                      favourite=True, source="personal"),)
    assert again.group_names == ("Familj",)
    assert again.marks["c:anna.berg"].vip is True
    assert again.marks["c:anna.berg"].favourite is None
    assert json.loads(path.read_text("utf-8"))["version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["contacts.json"]  # no temporary files left


def test_personal_contacts_refuse_what_they_cannot_keep(personal: PersonalContacts) -> None:
    with pytest.raises(ValueError, match="at least one number"):
        personal.add("Anna", [])
    with pytest.raises(ValueError, match="is not a phone number"):
        personal.add("Anna", [Number("mobile", "ring mig")])
    with pytest.raises(ValueError, match="number kind"):
        Number("fax", "0812")
    contact = personal.add("Anna", [Number("mobile", "0812")])
    with pytest.raises(ValueError, match="not a contact field: colour"):
        personal.update(contact.id, colour="red")
    with pytest.raises(KeyError):
        personal.update("p-nobody", name="x")
    with pytest.raises(KeyError):
        personal.delete("p-nobody")
    small = PersonalContacts(personal.path, max_contacts=1)
    with pytest.raises(ValueError, match="at most 1 personal contacts"):
        small.add("Per", [Number("mobile", "0813")])


def test_personal_groups(personal: PersonalContacts) -> None:
    anna = personal.add("Anna", [Number("mobile", "0812")], groups=["Jobb", "Familj"])
    personal.add_group("Grannar")
    personal.rename_group("Jobb", "Kollegor")
    assert personal.get(anna.id).groups == ("Kollegor", "Familj")  # type: ignore[union-attr]
    assert personal.group_names == ("Kollegor", "Familj", "Grannar")
    personal.delete_group("Familj")
    assert personal.get(anna.id).groups == ("Kollegor",)  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        personal.delete_group("Familj")
    with pytest.raises(ValueError, match="a group needs a name"):
        personal.add_group("  ")


def test_a_failed_save_changes_nothing(personal: PersonalContacts,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    personal.add("Anna", [Number("mobile", "0812")])

    def full_disk(path: Path, value: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(personal_module, "atomic_write_json", full_disk)
    with pytest.raises(OSError):
        personal.add("Per", [Number("mobile", "0813")])
    assert [c.name for c in personal.contacts] == ["Anna"]
    assert personal.revision == 1


def test_corrupt_personal_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "contacts.json"
    path.write_text('{"version": 1, "contacts": [', "utf-8")
    store = PersonalContacts(path)
    assert store.contacts == ()
    assert len(store.problems) == 1
    assert "is damaged (not JSON: Expecting value, line 1 column 29): moved aside to " \
           "contacts.json.corrupt; starting with no personal contacts" in store.problems[0]
    assert (tmp_path / "contacts.json.corrupt").read_text("utf-8") == '{"version": 1, "contacts": ['
    assert not path.exists()
    store.add("Anna", [Number("mobile", "0812")])
    assert len(PersonalContacts(path).contacts) == 1
    path.write_bytes(b"\xff\xfe garbage")
    assert "not UTF-8 text" in PersonalContacts(path).problems[0]
    assert (tmp_path / "contacts.json.corrupt.1").exists()
    path.write_text("[1, 2]", "utf-8")
    assert "is not a personal contacts file" in PersonalContacts(path).problems[0]


def test_partly_damaged_personal_file_keeps_the_good_entries(tmp_path: Path) -> None:
    path = tmp_path / "contacts.json"
    good = {"id": "p-1", "name": "Anna", "numbers": [{"kind": "mobile", "value": "0812"}]}
    bad = {"id": "p-2", "name": "Per", "numbers": [{"kind": "fax", "value": "0813"}]}
    path.write_text(json.dumps({"version": 1, "contacts": [good, bad, "x"],
                                "marks": {"c-1": {"favourite": "yes"}}}), "utf-8")
    store = PersonalContacts(path)
    assert [c.name for c in store.contacts] == ["Anna"]
    assert len(store.problems) == 1
    assert "had 3 unusable part(s): contact 2: number kind must be one of" in store.problems[0]
    assert "moved aside to contacts.json.corrupt; kept 1 contact(s)" in store.problems[0]
    assert [c.name for c in PersonalContacts(path).contacts] == ["Anna"]  # written back
    assert PersonalContacts(path).problems == []


# -- multi-tap --------------------------------------------------------------------------------


def tap(entry: MultiTap, keys: str, start: float = 0.0, gap: float = 0.2) -> float:
    """Press `keys` `gap` seconds apart; a space in `keys` waits out the time-out instead."""
    now = start
    for key in keys:
        if key == " ":
            now += entry.timeout
            entry.tick(now)
        else:
            entry.press(key, now)
        now += gap
    return now


@pytest.mark.parametrize(("keys", "letter"), [
    ("2", "a"), ("22", "b"), ("222", "c"), ("2222", "å"), ("22222", "ä"), ("222222", "2"),
    ("2222222", "a"), ("3333", "é"), ("6666", "ö"), ("8888", "ü"), ("00", "+"),
])
def test_multitap_cycles_a_keys_letters(keys: str, letter: str) -> None:
    entry = MultiTap(mode="abc")
    tap(entry, keys)
    assert entry.text == letter
    assert entry.pending == letter


def test_multitap_commits_on_another_key_or_time_out() -> None:
    entry = MultiTap(mode="abc")
    entry.press("2", 0.0)
    entry.press("3", 0.1)
    assert (entry.committed, entry.pending) == ("a", "d")
    entry.press("3", 0.5)
    assert entry.text == "ae"
    assert not entry.tick(1.4)
    assert entry.tick(1.5)
    assert (entry.committed, entry.pending) == ("ae", "")
    entry.press("2", 2.0)
    entry.press("2", 3.5)  # after the time-out: a new letter
    assert entry.text == "aeaa"


def test_multitap_types_a_swedish_name() -> None:
    entry = MultiTap()
    tap(entry, "2222 7777 2#6666 22 33 777 4")
    assert entry.text == "Åsa Öberg"


def test_multitap_modes_space_and_backspace() -> None:
    entry = MultiTap()
    tap(entry, "2 2 2")
    assert entry.text == "Aaa"
    tap(entry, "*", start=10)  # abc
    tap(entry, "*", start=11)  # ABC
    tap(entry, "22", start=12)
    assert entry.text == "AaaB"
    tap(entry, "*070#", start=20)  # 123
    assert entry.text == "AaaB070 "
    assert entry.mode == "123"
    entry.backspace()
    assert entry.text == "AaaB070"
    tap(entry, "*2", start=30)
    assert entry.mode == "Abc"
    assert entry.backspace() == "AaaB070"  # drops the pending letter
    entry.clear()
    assert entry.text == ""
    with pytest.raises(ValueError, match="not a keypad key"):
        entry.press("A", 50)
    with pytest.raises(ValueError, match="mode must be"):
        MultiTap(mode="xyz")


def test_multitap_capitalises_after_hyphen() -> None:
    entry = MultiTap()
    tap(entry, "2 66 66 2 111111 55 2 777 444 66")
    assert entry.text == "Anna-Karin"
