"""Personal contacts survive a kill -9 in the middle of writing them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from firmware.directory import PersonalContacts

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import sys
from pathlib import Path
from firmware.directory import Number, PersonalContacts
contacts = PersonalContacts(Path(sys.argv[1]))
n = 0
while True:
    n += 1
    added = contacts.add(f"Kollega {n}", [Number("work", f"{1000 + n}")])
    print(added.id, flush=True)
"""


def test_every_contact_saved_before_a_kill_is_there_after_it(tmp_path: Path) -> None:
    path = tmp_path / "contacts.json"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                             text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    saved = [child.stdout.readline().strip() for _ in range(60)]  # each printed after saving
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    reloaded = PersonalContacts(path)
    assert reloaded.problems == []
    ids = {contact.id for contact in reloaded.contacts}
    assert set(saved) <= ids
    assert not list(tmp_path.glob("*.corrupt*"))



def test_a_contact_added_through_the_menu_survives_a_reopen(tmp_path: Path) -> None:
    from tests.unit.test_call_features import directory_phone, keys, make_phone, screen
    from tests.unit.test_contacts_menu import add_asa, spell

    phone, _, clock = directory_phone(tmp_path)
    add_asa(phone, clock)  # Directory, New contact..., Åsa, 0731234567, ok: her card
    keys(phone, "#", "down", "down", "ok", "ok")  # a VIP; Groups: -, New group...
    spell(phone, clock, "5", "666", "22", "22")  # J o b b
    keys(phone, "ok")
    path = tmp_path / "state" / "contacts.json"
    reopened = PersonalContacts(path)
    assert reopened.problems == [] and [p.name for p in path.parent.iterdir()
                                        if p.name.startswith("contacts")] == ["contacts.json"]
    [contact] = reopened.contacts
    assert (contact.name, contact.vip, contact.groups) == ("Åsa", True, ("Jobb",))
    again, _, _ = make_phone({"directory": {"file": "company.csv"}}, tmp_path)  # a restart
    keys(again, "directory", "272")
    assert screen(again).startswith("Search: 272\n>Åsa             VIP")
    assert again.directory.is_vip("0731234567")
    assert [c.name for c in again.directory.in_group("Jobb")] == ["Åsa"]
