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
