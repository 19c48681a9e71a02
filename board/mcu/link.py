"""One end of the front-panel link: handshake, reliable delivery, heartbeat.

The same class runs on the controller (MicroPython, role CONTROLLER) and on the SBC (CPython,
role HOST, wrapped by `board.frontpanel.FrontPanelLink`). It never reads a clock: the owner
passes `now` in milliseconds to `feed()`, `send()` and `poll()`, and asks `next_due()` when to
poll again. Common subset of CPython 3.11 and MicroPython 1.27.

Rules (docs/frontpanel.md has the full protocol):
- Both ends send HELLO every `hello_ms` while the link is down. A HELLO is answered with
  HELLO_ACK echoing its epoch; either one brings the link up. A new peer epoch means the peer
  restarted: the record of frames seen from it is forgotten and `on_handshake(True)` runs.
- Reliable frames (KEY, HOOK, LED, LED_ALL, ERROR) go one at a time, stop-and-wait, only while
  up; each is resent until its ACK comes, with the timeout doubling from `rto_ms` up to
  `rto_max_ms`; after `max_tries` sends the link goes down and the frame waits for the next
  handshake. Stop-and-wait keeps events in order with one frame of RAM on the controller.
- The receiver ACKs every reliable frame it gets while up, and hands each sequence number to
  `on_frame` once: it remembers the last `window` numbers of the peer's epoch. Reliable frames
  that come while down are not ACKed (the sender keeps them) and make us say HELLO.
- While up, a HEARTBEAT goes out every `heartbeat_ms`; nothing valid heard for `dead_ms` takes
  the link down. `on_state(up, reason)` runs once per change.
"""

try:
    from board.mcu import frame as F
except ImportError:  # on the controller the modules sit at the top level
    import frame as F

try:
    from time import ticks_diff
except ImportError:  # CPython: timestamps are plain integers that do not wrap
    def ticks_diff(a: int, b: int) -> int:
        return a - b


class Link:
    """A reliable, ordered, heartbeat-watched frame link over a byte stream."""

    def __init__(self, role: int, epoch: int, write, firmware: tuple = (1, 0), caps: int = 0,
                 rto_ms: int = 50, rto_max_ms: int = 1000, max_tries: int = 8,
                 heartbeat_ms: int = 1000, dead_ms: int = 3000, hello_ms: int = 500,
                 queue_max: int = 64, window: int = 16) -> None:
        self.role = role
        self.epoch = epoch & 0xFFFFFFFF
        self.firmware = firmware
        self.caps = caps
        self.rto_ms, self.rto_max_ms, self.max_tries = rto_ms, rto_max_ms, max_tries
        self.heartbeat_ms, self.dead_ms, self.hello_ms = heartbeat_ms, dead_ms, hello_ms
        self.queue_max, self.window = queue_max, window
        self.on_frame = None  # (type, payload) for each new reliable frame, in order
        self.on_handshake = None  # (peer_reset) after each HELLO, or HELLO_ACK while down
        self.on_state = None  # (up, reason) once per change of `up`
        self.up = False
        self.reason = "not started"
        self.peer_epoch = None
        self.peer_firmware = None
        self.peer_caps = 0
        self.decoder = F.Decoder()
        self.stats = {"tx_frames": 0, "rx_frames": 0, "retransmits": 0, "duplicates": 0,
                      "acked": 0, "overflow": 0, "echo": 0, "stale": 0, "bad_payload": 0}
        self._write = write
        self._queue = []  # [(type, payload, key)] waiting to be sent
        self._inflight = None  # [seq, encoded frame, sent at, sends so far, type, payload]
        self._seq = 0
        self._recent = []  # last `window` sequence numbers delivered in the peer's epoch
        self._start = self._last_rx = self._last_hb = self._last_hello = 0

    # -- the owner's calls ------------------------------------------------------------------

    def start(self, now: int) -> None:
        """Say HELLO; the link comes up when the peer answers."""
        self._start = now
        self.reason = "waiting for HELLO"
        self._send_hello(now)

    def feed(self, data: bytes, now: int) -> None:
        """Bytes from the line."""
        for ftype, seq, payload in self.decoder.feed(data):
            self.stats["rx_frames"] += 1
            self._last_rx = now
            self._handle(ftype, seq, payload, now)

    def send(self, ftype: int, payload: bytes, now: int, key=None) -> bool:
        """Queue a reliable frame; one not yet sent with the same `key` is replaced.

        False when the queue was full and its oldest frame was dropped to make room.
        """
        if key is not None:
            self._queue = [item for item in self._queue if item[2] != key]
        dropped = len(self._queue) >= self.queue_max
        if dropped:
            self._queue.pop(0)
            self.stats["overflow"] += 1
        self._queue.append((ftype, payload, key))
        self._pump(now)
        return not dropped

    def poll(self, now: int) -> None:
        """Run whatever is due: retransmission, heartbeat, dead-peer check, HELLO."""
        if not self.up:
            if ticks_diff(now, self._last_hello) >= self.hello_ms:
                self._send_hello(now)
            return
        if ticks_diff(now, self._last_rx) >= self.dead_ms:
            self._go_down(f"nothing heard for {ticks_diff(now, self._last_rx)} ms")
            self._send_hello(now)
            return
        self._check_retransmit(now)
        if self.up and ticks_diff(now, self._last_hb) >= self.heartbeat_ms:
            self._send_heartbeat(now)

    def next_due(self, now: int) -> int:
        """Milliseconds until `poll()` has something to do (at least 1)."""
        if not self.up:
            return max(1, self.hello_ms - ticks_diff(now, self._last_hello))
        due = min(self.heartbeat_ms - ticks_diff(now, self._last_hb),
                  self.dead_ms - ticks_diff(now, self._last_rx))
        if self._inflight is not None:
            due = min(due, self._rto(self._inflight[3]) - ticks_diff(now, self._inflight[2]))
        return max(1, due)

    def pending(self) -> int:
        """Reliable frames not yet acknowledged (queued or in flight)."""
        return len(self._queue) + (self._inflight is not None)

    def unacked(self) -> list:
        """[(type, payload), ...] not yet acknowledged, the one in flight first."""
        queued = [(ftype, payload) for ftype, payload, _ in self._queue]
        if self._inflight is not None:
            queued.insert(0, (self._inflight[4], self._inflight[5]))
        return queued

    def discard_pending(self) -> None:
        """Forget every unacknowledged frame (the SBC does, before sending LED_ALL)."""
        self._queue = []
        self._inflight = None

    # -- receiving ------------------------------------------------------------------------

    def _handle(self, ftype: int, seq: int, payload: bytes, now: int) -> None:
        try:
            if ftype == F.ACK:
                self._on_ack(F.unpack_ack(payload), now)
            elif ftype == F.HELLO or ftype == F.HELLO_ACK:
                self._on_hello(ftype, F.unpack_hello(payload), now)
            elif ftype == F.HEARTBEAT:
                self._on_heartbeat(F.unpack_heartbeat(payload)[0], now)
            elif seq:
                self._on_reliable(ftype, seq, payload, now)
        except F.FrameError:
            self.stats["bad_payload"] += 1

    def _on_ack(self, seq: int, now: int) -> None:
        if self._inflight is None or self._inflight[0] != seq:
            self.stats["stale"] += 1
            return
        self._inflight = None
        self.stats["acked"] += 1
        self._pump(now)

    def _on_hello(self, ftype: int, hello: tuple, now: int) -> None:
        version, role, epoch, firmware, caps, echo = hello
        if role == self.role:
            self.stats["echo"] += 1
            self.reason = "heard our own HELLO: the line loops back"
            return
        if version != F.PROTOCOL_VERSION:
            self._go_down(f"peer speaks protocol {version}, we speak {F.PROTOCOL_VERSION}")
            return
        if ftype == F.HELLO_ACK and (echo != self.epoch or self.up):
            self.stats["stale"] += 1
            return
        if ftype == F.HELLO:
            self._write_frame(F.HELLO_ACK, 0, F.pack_hello(
                self.role, self.epoch, self.firmware, self.caps, epoch))
        reset = epoch != self.peer_epoch
        if reset:
            if self.up:
                self._go_down(f"peer restarted (epoch {epoch:08x})")
            self.peer_epoch = epoch
            self._recent = []
        self.peer_firmware, self.peer_caps = firmware, caps
        self._come_up(reset, now)

    def _on_heartbeat(self, epoch: int, now: int) -> None:
        if self.up and epoch != self.peer_epoch:
            self._go_down(f"peer restarted (epoch {epoch:08x})")
            self._send_hello(now)

    def _on_reliable(self, ftype: int, seq: int, payload: bytes, now: int) -> None:
        if not self.up:
            if ticks_diff(now, self._last_hello) >= self.rto_ms:
                self._send_hello(now)
            return
        self._write_frame(F.ACK, 0, F.pack_ack(seq))
        if seq in self._recent:
            self.stats["duplicates"] += 1
            return
        self._recent.append(seq)
        if len(self._recent) > self.window:
            self._recent.pop(0)
        if self.on_frame is not None:
            self.on_frame(ftype, payload)

    # -- state ----------------------------------------------------------------------------

    def _come_up(self, reset: bool, now: int) -> None:
        was_up = self.up
        self.up = True
        self._last_hb = now
        stalled = None if was_up else self._inflight
        if not was_up:
            major, minor = self.peer_firmware
            self.reason = f"peer epoch {self.peer_epoch:08x}, firmware {major}.{minor}"
            if self.on_state is not None:
                self.on_state(True, self.reason)
        if self.on_handshake is not None:
            self.on_handshake(reset)
        if stalled is not None and stalled is self._inflight:
            stalled[3] = 0
            self._transmit(now)
        self._pump(now)

    def _go_down(self, reason: str) -> None:
        was_up = self.up
        self.up = False
        self.reason = reason
        if was_up and self.on_state is not None:
            self.on_state(False, reason)

    # -- sending --------------------------------------------------------------------------

    def _pump(self, now: int) -> None:
        if not self.up or self._inflight is not None or not self._queue:
            return
        ftype, payload, _ = self._queue.pop(0)
        self._seq = self._seq % 255 + 1
        self._inflight = [self._seq, F.encode(ftype, self._seq, payload), now, 0, ftype, payload]
        self._transmit(now)

    def _transmit(self, now: int) -> None:
        inflight = self._inflight
        if inflight[3]:
            self.stats["retransmits"] += 1
        inflight[2] = now
        inflight[3] += 1
        self._write_raw(inflight[1])

    def _check_retransmit(self, now: int) -> None:
        inflight = self._inflight
        if inflight is None or ticks_diff(now, inflight[2]) < self._rto(inflight[3]):
            return
        if inflight[3] >= self.max_tries:
            self._go_down(f"no ACK after {inflight[3]} sends")
            self._send_hello(now)
        else:
            self._transmit(now)

    def _rto(self, sends: int) -> int:
        shift = sends - 1 if sends > 0 else 0
        return min(self.rto_max_ms, self.rto_ms << min(shift, 8))

    def _send_hello(self, now: int) -> None:
        self._last_hello = now
        self._write_frame(F.HELLO, 0, F.pack_hello(self.role, self.epoch, self.firmware,
                                                    self.caps))

    def _send_heartbeat(self, now: int) -> None:
        self._last_hb = now
        self._write_frame(F.HEARTBEAT, 0, F.pack_heartbeat(self.epoch,
                                                           ticks_diff(now, self._start)))

    def _write_frame(self, ftype: int, seq: int, payload: bytes) -> None:
        self._write_raw(F.encode(ftype, seq, payload))

    def _write_raw(self, data: bytes) -> None:
        self.stats["tx_frames"] += 1
        self._write(data)
