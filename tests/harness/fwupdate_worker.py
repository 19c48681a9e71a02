"""Firmware updates in a loop, for the kill -9 test: one line on stdout after each finished step.

    python tests/harness/fwupdate_worker.py ROOT IMAGE PUBKEYFILE [IMAGE ...] [--loops N]

At start it does what a phone does at power-on: ``repair()``, ``boot()`` and, once "up",
``mark_healthy()``. Then, each loop: install the first image whose version is not the active
one into the inactive slot, ``switch_on_reboot()``, ``boot()``, ``mark_healthy()``. With two
images of different versions every loop writes the inactive slot. The public key file's name
(without extension) is the key id, as in ``provisioning.signing.load_public_keys``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from provisioning.firmware import MANIFEST_NAME, Slots, verify_image
from provisioning.signing import load_public_keys


def _say(text: str) -> None:
    print(text, flush=True)


def _version(image: bytes, trusted: Mapping[str, Ed25519PublicKey]) -> str:
    """The version in an image's manifest."""
    _key_id, body = verify_image(image, trusted)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
        stream = tar.extractfile(MANIFEST_NAME)
        assert stream is not None
        return str(json.loads(stream.read())["version"])


def main(argv: list[str] | None = None) -> int:
    """Run the update loop until killed (or for ``--loops`` loops)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("image", type=Path)
    parser.add_argument("pubkey", type=Path)
    parser.add_argument("more_images", type=Path, nargs="*")
    parser.add_argument("--loops", type=int, default=10_000)
    args = parser.parse_args(argv)
    trusted = load_public_keys([args.pubkey])
    images = [path.read_bytes() for path in [args.image, *args.more_images]]
    versions = [_version(image, trusted) for image in images]

    slots = Slots(args.root)
    for action in slots.repair():
        _say(f"repair: {action}")
    _say(f"boot {slots.boot()}")
    slots.mark_healthy()
    _say("healthy")
    for _ in range(args.loops):
        state = slots.state()
        running = state.slots[state.active].version
        choice = next((i for i, v in enumerate(versions) if v != running), None)
        if choice is None:
            _say(f"nothing to install: every image is version {running}")
            return 1
        info = slots.install(images[choice], trusted)
        _say(f"installed {info.version} in slot {info.name}")
        slots.switch_on_reboot()
        _say(f"switch to slot {info.name}")
        _say(f"boot {slots.boot()}")
        slots.mark_healthy()
        _say(f"healthy, running {slots.state().active}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
