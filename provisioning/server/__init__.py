"""The provisioning server side: inventory, signed config tree, redirect, check-sync, CLI.

- ``inventory.Inventory``: the device inventory - the phones, their SIP lines, one TOML template
  per phone model and the common layer - in one SQLite file or a PostgreSQL database
  (``backends``).
- ``render.render_tree``: turns the inventory into a directory of signed files -
  ``common.toml``, ``<model>.toml``, ``<mac>.toml`` and ``index.json`` - that any static web
  server (nginx, a CDN) serves as they are. Phones fetch the three layers and merge them
  common < model < MAC.
- ``redirect.RedirectService``: the redirect endpoint, a new phone's first contact (zero-touch):
  it proves itself with its device certificate and is answered with its provisioning URL.
- ``checksync.send_check_sync``: the check-sync trigger, a SIP NOTIFY through the PBX telling a
  phone to fetch its files now (after a publish), or to restart.
- ``https``: a small lab CA and HTTPS file server, for labs and tests where no nginx runs.
- ``cli``: the command line for all of it (``python -m provisioning.server.cli``), including
  ``serve``, which runs the redirect endpoint and the plug-and-play responder.

The plug-and-play responder itself (SIP multicast SUBSCRIBE, RFC 6080, telling new phones on the
LAN where the tree is) is ``provisioning.pnp.PnpResponder``, next to the phone's side of it.

SIP passwords reach a phone only encrypted for its device key, inside its own ``<mac>.toml``;
there is no separate credentials endpoint. A phone without a device key gets its file without
them. Signing and per-device encryption are in ``provisioning.signing``; the renderer takes them
as plain callables.
"""
