"""The DECT base: a radio module on a UART carries up to 6 handsets (docs/dect.md).

- `messages`: the message set (frame types 0x40-0x6F) on the front panel's framing.
- `link`: `DectLink`, the front panel's `Link` answering only the other DECT end.
- `line`: `SerialLine`, a `Link` on a pyserial port with its timers on the `Clock`.
- `radio`: `DectRadio`, the base's side: handset events as callbacks, commands.
- `eeprom`: the module's registration table.
- `sim`, `simcontrol`, `simserver`: the simulated module and handsets, its control socket,
  `python -m board.dect.sim`.
"""
