"""The front-panel controller's MicroPython program (RP2040-class) and its wire format.

Every module here is written in the common subset of CPython 3.11 and MicroPython 1.27: the
controller runs them from the root of its filesystem (`import frame`), the SBC imports the same
files as `board.mcu.*`. See docs/frontpanel.md.
"""
