"""Own contacts and groups on the phone, driven by key presses: new, edit, delete, star and
VIP marks, a company contact saved to one's own, groups created, filled and browsed. The company
directory is the two-person CSV of `test_call_features.directory_phone`."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from firmware.clock import ManualClock
from firmware.directory import Number
from firmware.phone import Phone
from tests.unit.test_call_features import (
    DIRECTORY_CSV,
    directory_phone,
    incoming,
    keys,
    make_phone,
    screen,
)
from tests.unit.test_phone_controller import RecordingSip


def spell(phone: Phone, clock: ManualClock, *presses: str) -> None:
    """Multi-tap: each string is one letter (a key pressed that many times), then a pause."""
    for letter in presses:
        for key in letter:
            phone.terminals[0].key(key)
        clock.advance(1.1)
        phone.terminals[0].refresh()


def add_asa(phone: Phone, clock: ManualClock) -> None:
    """Directory, New contact..., "Åsa", work number 0731234567, ok: her card."""
    keys(phone, "directory")
    while screen(phone).split("\n")[1:2] != [">New contact..."]:
        keys(phone, "down")
    keys(phone, "ok")
    spell(phone, clock, "2222", "7777", "2")  # Å s a
    keys(phone, "down", "0731234567", "ok")


Office = tuple[Phone, RecordingSip, ManualClock]


@pytest.fixture
def office(tmp_path: Path) -> Office:
    return directory_phone(tmp_path)


# --- new, edit, delete ------------------------------------------------------------------------


def test_with_nothing_typed_the_directory_offers_new_contact_and_groups(office: Office) -> None:
    phone, _, _ = office
    keys(phone, "directory")
    assert screen(phone) == "Favourites\n>New contact...\n Groups...\n"


def test_a_new_contact_is_spelled_dialled_saved_and_its_card_opens(office: Office) -> None:
    phone, _, clock = office
    keys(phone, "directory", "ok")
    assert screen(phone) == "New contact      Abc\n>Name: _\n Work: \n Mob: "
    spell(phone, clock, "2222", "7777", "2")
    keys(phone, "down", "*46731234567")  # * on an empty number is +
    assert screen(phone) == "New contact\n Name: Åsa\n>Work: +46731234567_\n Mob: "
    keys(phone, "ok")
    assert screen(phone) == "Åsa\n>Work +46731234567\n Edit\n Groups: -"
    assert phone.personal is not None
    [contact] = phone.personal.contacts
    assert (contact.name, contact.numbers) == ("Åsa", (Number("work", "+46731234567"),))
    keys(phone, "cancel", "272")  # A-S-A: found by the search like any contact
    assert screen(phone).startswith("Search: 272\n>Åsa")
    assert phone.name_for("0731234567") == "Åsa"  # and names her calls


def test_a_contact_needs_a_number_that_is_one(office: Office) -> None:
    phone, _, clock = office
    keys(phone, "directory", "ok")
    spell(phone, clock, "2")
    keys(phone, "ok")
    assert screen(phone) == "Not saved\nType at least one\nnumber\n"
    keys(phone, "ok", "down", "down", "#", "#", "ok")
    assert screen(phone) == "Not saved\n## is not a phone\nnumber\n"
    keys(phone, "cancel")
    assert screen(phone).endswith(">Mob: ##_")  # the text stays to be corrected
    assert phone.personal is not None and phone.personal.contacts == ()


def test_cancel_deletes_and_on_an_empty_field_leaves_without_saving(office: Office) -> None:
    phone, _, clock = office
    keys(phone, "directory", "ok")
    spell(phone, clock, "2", "22")
    keys(phone, "cancel")
    assert ">Name: A_" in screen(phone)
    keys(phone, "cancel", "cancel")
    assert screen(phone).startswith("Favourites")
    assert phone.personal is not None and phone.personal.contacts == ()


def test_a_name_without_a_pause_is_kept_when_ok_is_pressed(office: Office) -> None:
    phone, _, _ = office
    keys(phone, "directory", "ok", "5", "down", "1234", "up")  # "J" still cycling, then moved
    keys(phone, "ok")
    assert screen(phone).startswith("J\n>Work 1234")


def test_an_own_contact_is_edited_from_its_card(office: Office) -> None:
    phone, _, clock = office
    add_asa(phone, clock)
    keys(phone, "down", "ok")  # Edit
    assert screen(phone) == "Edit contact     Abc\n>Name: Åsa_\n Work: 0731234567\n Mob: "
    keys(phone, "#")
    spell(phone, clock, "33", "55", "8")  # E k t
    keys(phone, "cancel")  # t goes
    keys(phone, "down", "down", "0709876543", "ok")
    assert screen(phone) == "Åsa Ek\n Work 0731234567\n>Mob 0709876543\n Edit"
    assert phone.personal is not None
    [contact] = phone.personal.contacts
    assert contact.name == "Åsa Ek" and [n.kind for n in contact.numbers] == ["work", "mobile"]


def test_delete_asks_first_cancel_keeps_ok_deletes(office: Office) -> None:
    phone, _, clock = office
    add_asa(phone, clock)
    keys(phone, "down", "down", "down")
    assert screen(phone).endswith(">Delete")
    keys(phone, "ok")
    assert screen(phone) == "Åsa\n>Delete? OK\n\n"
    keys(phone, "5", "cancel")  # digits do nothing here; cancel keeps her
    assert screen(phone).endswith(">Delete")
    keys(phone, "ok", "ok")
    assert screen(phone).startswith("Favourites\n>New contact...")  # the card closed
    assert phone.personal is not None and phone.personal.contacts == ()
    assert phone.name_for("0731234567") is None


# --- marks: favourite and VIP -----------------------------------------------------------------


def test_hash_makes_a_vip_who_rings_through_do_not_disturb(office: Office) -> None:
    phone, sip, _ = office
    keys(phone, "directory", "2662", "ok", "#")  # Anna Berg, from the company directory
    assert screen(phone).startswith("Anna Berg        VIP\n>Work 1002")
    keys(phone, "*")
    assert screen(phone).startswith("Anna Berg      * VIP\n")
    keys(phone, "cancel")
    assert screen(phone).startswith("Search: 2662\n>*Anna Berg      VIP")
    keys(phone, "cancel", "cancel", "cancel", "cancel", "cancel", "dnd")
    incoming(phone, "in1", "1003")  # Bertil: turned away
    assert ("ring", "in1") not in sip.sent
    incoming(phone, "in2", "1002")  # Anna, a VIP: rings
    assert sip.last("ring") == ("ring", "in2")


def test_hash_again_takes_the_vip_mark_away_and_it_is_kept(office: Office,
                                                           tmp_path: Path) -> None:
    phone, _, _ = office
    keys(phone, "directory", "2662", "ok", "#", "#")
    assert screen(phone).startswith("Anna Berg\n")
    keys(phone, "#")
    again, _, _ = make_phone({"directory": {"file": "company.csv"}}, tmp_path)
    assert again.directory.is_vip("1002")


# --- company contacts: read-only, saved to one's own --------------------------------------------


def test_a_company_contact_has_no_edit_or_delete_but_can_be_saved_to_mine(
        office: Office) -> None:
    phone, _, _ = office
    keys(phone, "directory", "2662", "ok")
    labels = [item.label for item in phone.terminals[0].views[-1].items]
    assert labels == ["Work 1002", "Mob 0701234567", "Exempel AB", "Ekonomi", "Save to mine"]
    keys(phone, "down", "down", "down", "down", "ok")
    assert screen(phone) == "Anna Berg\n>Work 1002\n Mob 0701234567\n Exempel AB"
    labels = [item.label for item in phone.terminals[0].views[-1].items]
    assert labels[-3:] == ["Edit", "Groups: -", "Delete"]
    assert phone.personal is not None
    [copy] = phone.personal.contacts
    assert (copy.company, copy.department, copy.source) == ("Exempel AB", "Ekonomi", "personal")
    assert len(phone.directory.contacts) == 3  # the company entry is still there, unchanged


# --- groups -------------------------------------------------------------------------------------


def test_a_group_is_created_filled_and_its_members_browsed(office: Office) -> None:
    phone, _, clock = office
    add_asa(phone, clock)
    keys(phone, "cancel", "down", "down", "ok")  # Groups...
    assert screen(phone) == "Groups\n>New group...\n\n"
    keys(phone, "ok")
    spell(phone, clock, "5", "555", "22", "22")  # J l b b
    keys(phone, "up")  # (up does nothing in a text)
    keys(phone, "cancel", "cancel", "cancel")
    spell(phone, clock, "666", "22", "22")  # J o b b
    keys(phone, "ok")
    assert screen(phone) == "Groups\n>New group...\n Jobb              0\n"
    keys(phone, "cancel", "272", "ok", "down", "down", "ok")  # Åsa's card, Groups: -
    assert screen(phone) == "Groups\n>  Jobb\n New group...\n"
    keys(phone, "ok")
    assert screen(phone) == "Groups\n>* Jobb\n New group...\n"
    keys(phone, "cancel")
    assert ">Groups: Jobb" in screen(phone)
    keys(phone, "cancel", "cancel", "cancel", "cancel", "down", "ok")  # back: Groups...
    assert screen(phone) == "Groups\n>New group...\n Jobb              1\n"
    keys(phone, "down", "ok")
    assert screen(phone) == "Jobb\n>Åsa\n\n"
    keys(phone, "ok")
    assert screen(phone) == "Åsa\n>Work 0731234567\n Edit\n Groups: Jobb"


def test_company_groups_are_listed_and_browsed_too(tmp_path: Path) -> None:
    (tmp_path / "company.csv").write_text("name;work;groups\nAnna Berg;1002;Ekonomi\n"
                                          "Bertil Ek;1003;IT\n")
    phone, _, _ = make_phone({"directory": {"file": "company.csv"}}, tmp_path)
    keys(phone, "directory", "down", "ok")
    assert screen(phone) == "Groups\n>New group...\n Ekonomi           1\n IT                1"
    keys(phone, "down", "#")  # a company group cannot be deleted
    assert screen(phone).startswith("Groups\n")
    keys(phone, "ok")
    assert screen(phone) == "Ekonomi\n>Anna Berg\n\n"


def test_a_new_group_from_a_contacts_groups_puts_the_contact_in_it(office: Office) -> None:
    phone, _, clock = office
    add_asa(phone, clock)
    keys(phone, "down", "down", "ok", "ok")  # Groups: -, New group...
    spell(phone, clock, "333", "2", "6", "444", "555", "5")  # F a m i l j
    keys(phone, "ok")
    assert screen(phone) == "Groups\n>* Familj\n New group...\n"
    keys(phone, "cancel")
    assert screen(phone) == "Åsa\n Edit\n>Groups: Familj\n Delete"
    assert phone.directory.in_group("familj")[0].name == "Åsa"


def test_an_own_group_is_deleted_after_an_ok_and_its_contacts_stay(office: Office) -> None:
    phone, _, _ = office
    assert phone.personal is not None
    phone.personal.add("Åsa", [Number("work", "1234")], groups=["Jobb"])
    keys(phone, "directory", "down", "ok", "down", "#")
    assert screen(phone) == "Jobb\n>Delete group? OK\n\n"
    keys(phone, "cancel")
    assert phone.personal.group_names == ("Jobb",)
    keys(phone, "#", "ok")
    assert screen(phone) == "Groups\n>New group...\n\n"
    assert phone.personal.group_names == () and phone.personal.contacts[0].groups == ()


def test_a_group_needs_a_name(office: Office) -> None:
    phone, _, _ = office
    keys(phone, "directory", "down", "ok", "ok", "#", "ok")  # a space only
    assert screen(phone) == "Not saved\nThe group needs a\nname\n"


# --- My contacts in the menu, in Swedish --------------------------------------------------------


def test_my_contacts_in_the_menu_lists_them_in_swedish_order(tmp_path: Path) -> None:
    (tmp_path / "company.csv").write_text(DIRECTORY_CSV)
    phone, sip, _ = make_phone({"device": {"language": "sv"},
                                "directory": {"file": "company.csv"}}, tmp_path)
    assert phone.personal is not None
    for name in ("Örjan", "Åke", "Zack"):
        phone.personal.add(name, [Number("mobile", "070111222" + str(len(name)))])
    keys(phone, "menu")
    labels = [item.label for item in phone.terminals[0].views[-1].items]
    assert labels[3:5] == ["Mina kontakter", "Språk"]
    keys(phone, "down", "down", "down", "ok")
    assert screen(phone) == "Mina kontakter\n>Ny kontakt...\n Grupper...\n Zack"
    labels = [item.label for item in phone.terminals[0].views[-1].items]
    assert labels[2:] == ["Zack", "Åke", "Örjan"]
    keys(phone, "5", "#")  # keypad keys do not start a call under the menu
    assert "make_call" not in sip.names() and screen(phone).startswith("Mina kontakter")
    keys(phone, "ok")
    assert screen(phone) == "Ny kontakt       Abc\n>Namn: _\n Arb: \n Mob: "
    keys(phone, "cancel", "down", "down", "ok")
    assert screen(phone).startswith("Zack\n>Mob 0701112224\n Ändra\n Grupper: -")


# --- what cannot be done ------------------------------------------------------------------------


def test_a_contact_that_cannot_be_saved_is_a_notice(office: Office,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    phone, _, _ = office

    def full_disk(path: Path, value: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("firmware.directory.personal.atomic_write_json", full_disk)
    keys(phone, "directory", "ok", "1234", "down", "1234", "ok")
    assert screen(phone) == "Not saved\nCould not save (No\nspace left on\ndevice)"
    keys(phone, "ok")
    assert screen(phone).startswith("New contact")  # nothing lost: try again later
    keys(phone, "cancel", "cancel", "cancel", "cancel", "2662", "ok", "#")
    assert screen(phone).startswith("Not saved\nCould not save")
    assert phone.personal is not None and phone.personal.contacts == ()


def test_the_phone_says_when_it_keeps_no_more_contacts(office: Office) -> None:
    phone, _, _ = office
    assert phone.personal is not None
    phone.personal.max_contacts = 1
    phone.personal.add("Åsa", [Number("work", "1234")])
    keys(phone, "directory", "ok", "down", "5678", "ok")
    assert screen(phone) == "Not saved\nFull: at most 1 own\ncontacts\n"


def test_without_a_data_directory_the_directory_is_search_only(tmp_path: Path) -> None:
    (tmp_path / "company.csv").write_text(DIRECTORY_CSV)
    phone, _, _ = make_phone({"directory": {"file": str(tmp_path / "company.csv")}})
    assert phone.personal is None
    keys(phone, "directory")
    assert screen(phone) == "Favourites\nNo match\n\n"
    keys(phone, "2662", "ok")
    labels = [item.label for item in phone.terminals[0].views[-1].items]
    assert labels == ["Work 1002", "Mob 0701234567", "Exempel AB", "Ekonomi"]
