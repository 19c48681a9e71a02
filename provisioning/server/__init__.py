"""The provisioning server side: the device inventory and the static, signed config tree.

What is here is the fleet path. The inventory (``inventory.Inventory``, one SQLite file) holds the
phones, their SIP lines, one TOML template per phone model and the common layer;
``render.render_tree`` turns it into a directory of signed files - ``common.toml``,
``<model>.toml``, ``<mac>.toml`` and ``index.json`` - that any static web server (nginx, a CDN)
serves as they are. Phones fetch the three layers and merge them common < model < MAC. SIP
passwords are only ever published encrypted for the one phone they belong to; a phone without a
device key gets its file without them. ``cli`` is the command line for both.

Not built here yet (so a phone without a device key cannot get its passwords from this package):

- a plug-and-play responder (SIP multicast SUBSCRIBE, RFC 6080) telling new phones on the LAN
  where the tree is;
- a redirect endpoint (zero-touch: a phone's first contact, answered with the tree's URL);
- a check-sync trigger (SIP NOTIFY ``check-sync``) telling phones to fetch again after a publish;
- the authenticated credentials endpoint (the device proving itself with its certificate or
  secret) that serves the passwords withheld from the static tree.

Signing and per-device encryption are in ``provisioning.signing``; the renderer takes them as
plain callables.
"""
