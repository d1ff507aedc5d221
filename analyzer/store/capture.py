"""Raw frame capture in the hftbacktest line format, and a reader for it.

File format (the one hftbacktest's collectors write, so its tools read ours): gzip
text, one frame per line, ``<ts_local_ns> <frame>\\n``: the local receipt time as decimal ns,
one space, the frame text verbatim. REST bodies are wrapped as
``<ts> {"rest":"<path?query>","body":<body>}`` so a replay knows which symbol a depth snapshot
is for. Binary frames (venues that compress theirs) are stored byte-exact as
``<ts> ~<base64 of the frame>`` (no JSON text starts with ``~``); the reader decodes them back.
Files: ``<dir>/<venue>/<venue>-<YYYYMMDD-HH>.gz``, one per UTC hour of ts_local.

Each flush is compressed on a background thread into its own complete gzip member and appended
(a gzip file may hold many members), so the caller never compresses and a crash leaves every
completed member readable; only the member being written can be cut short.
"""

from __future__ import annotations

import base64
import gzip
import logging
import queue
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

log = logging.getLogger(__name__)

_HOUR_NS = 3600 * 10**9
# Timestamp digits -> factor to ns. hftbacktest's 2023 files carry 16-digit microseconds.
_TS_SCALE = {19: 1, 16: 1_000, 13: 1_000_000, 10: 1_000_000_000}


def capture_path(dir: Path, venue: str, ts_ns: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H", time.gmtime(ts_ns // 1_000_000_000))
    return Path(dir) / venue / f"{venue}-{stamp}.gz"


class RawCapture:
    """Appends raw frames to hourly gzip files without compressing on the caller's thread.

    ``write`` costs a few hundred ns (an append to a bytearray); every ``flush_bytes`` of text
    or ``flush_seconds`` of ts_local the buffer goes to the compressor thread through a bounded
    queue. With ``shed_when_behind`` (the collector: its caller is the event loop, which must
    never block) a buffer the full queue cannot take (``queue_members`` x ``flush_bytes``, 32 MB
    by default) is dropped and counted in ``stats["bytes_dropped"]``: the capture is a replay
    aid and is shed first, the normalized data has its own store. Without it, a full queue
    blocks the caller (a tool writing a file in bulk), counted in ``backpressure_waits``."""

    def __init__(
        self,
        dir: Path,
        venue: str,
        *,
        flush_bytes: int = 1 << 20,
        flush_seconds: float = 1.0,
        compresslevel: int = 6,
        queue_members: int = 32,
        max_retry_bytes: int = 64 << 20,
        shed_when_behind: bool = False,
    ) -> None:
        self.dir = Path(dir)
        self.venue = venue
        self.stats: dict[str, Any] = {
            "lines": 0,
            "members": 0,
            "bytes_in": 0,
            "bytes_out": 0,
            "write_errors": 0,
            "bytes_dropped": 0,
            "backpressure_waits": 0,
            "newlines_replaced": 0,
        }
        self._flush_bytes = flush_bytes
        self._flush_ns = int(flush_seconds * 1e9)
        self._level = compresslevel
        self._max_retry = max_retry_bytes
        self._shed = shed_when_behind
        self._buf = bytearray()
        self._buf_hour = -1
        self._buf_since = 0
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=max(1, queue_members))
        self._retry: list[tuple[int, bytes]] = []  # (hour, gzip member) not yet written
        self._file: IO[bytes] | None = None
        self._file_hour = -1
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"capture-{venue}", daemon=True)
        self._thread.start()

    def write(self, ts_local_ns: int, frame: bytes | str) -> None:
        """Append ``<ts_local_ns> <frame>\\n``. A newline inside the frame (only possible in
        JSON as whitespace) is replaced by a space, so each frame stays one line."""
        if self._closed:
            raise ValueError("capture is closed")
        if isinstance(frame, str):
            frame = frame.encode()
        if b"\n" in frame:
            frame = frame.replace(b"\n", b" ")
            self.stats["newlines_replaced"] += 1
        hour = ts_local_ns // _HOUR_NS
        buf = self._buf
        if hour != self._buf_hour:
            if buf:
                self._handoff()
                buf = self._buf
            self._buf_hour = hour
        if not buf:
            self._buf_since = ts_local_ns
        buf += b"%d " % ts_local_ns
        buf += frame
        buf += b"\n"
        self.stats["lines"] += 1
        if len(buf) >= self._flush_bytes or ts_local_ns - self._buf_since >= self._flush_ns:
            self._handoff()

    def write_binary(self, ts_local_ns: int, frame: bytes) -> None:
        """Append a binary frame, byte-exact: ``<ts_local_ns> ~<base64>\n``."""
        self.write(ts_local_ns, b"~" + base64.b64encode(frame))

    def write_rest(self, ts_local_ns: int, url_path: str, body: bytes) -> None:
        """Record a REST response: ``<ts> {"rest":"<url_path>","body":<body verbatim>}``."""
        self.write(
            ts_local_ns, b'{"rest":' + msgspec.json.encode(url_path) + b',"body":' + body + b"}"
        )

    def flush(self) -> None:
        """Hand the buffer to the compressor and wait until everything is on disk (the OS's)."""
        if self._buf:
            self._handoff()
        done = threading.Event()
        self._put(("barrier", done))
        done.wait()

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._put(("stop",))
        self._thread.join()

    def __enter__(self) -> RawCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handoff(self) -> None:
        data, self._buf = bytes(self._buf), bytearray()
        if not self._shed:
            self._put(("data", self._buf_hour, data))
            return
        try:
            self._queue.put_nowait(("data", self._buf_hour, data))
        except queue.Full:
            self.stats["backpressure_waits"] += 1
            self.stats["bytes_dropped"] += len(data)
            if self.stats["backpressure_waits"] in (1, 10, 100) or not (
                    self.stats["backpressure_waits"] % 1000):
                log.error("capture %s: compressor behind: %d bytes of raw frames dropped",
                          self.venue, self.stats["bytes_dropped"])

    def _put(self, job: tuple[Any, ...]) -> None:
        try:
            self._queue.put_nowait(job)
        except queue.Full:  # the compressor is behind: block rather than drop
            self.stats["backpressure_waits"] += 1
            self._queue.put(job)

    # -- compressor thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            jobs = [self._queue.get()]
            # Take everything queued: one member per run of same-hour buffers. Fewer GIL
            # round trips per byte, so a busy event loop cannot starve this thread.
            while True:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                if self._handle(jobs):
                    return
            except Exception:
                log.exception("capture %s: unexpected error", self.venue)
                for job in jobs:
                    if job[0] == "barrier":
                        job[1].set()

    def _handle(self, jobs: list[tuple[Any, ...]]) -> bool:
        """Process jobs in order; True once the stop job was handled."""
        chunks: list[bytes] = []
        hour = -1
        for job in [*jobs, ("end",)]:
            if chunks and (job[0] != "data" or job[1] != hour):
                data = b"".join(chunks)
                chunks = []
                # zlib releases the GIL while deflating.
                member = gzip.compress(data, compresslevel=self._level, mtime=0)
                self.stats["bytes_in"] += len(data)
                self._retry.append((hour, member))
            if job[0] == "data":
                hour = job[1]
                chunks.append(job[2])
                continue
            self._write_pending()
            if job[0] == "barrier":
                job[1].set()
            elif job[0] == "stop":
                if self._retry:
                    lost = sum(len(m) for _, m in self._retry)
                    log.error(
                        "capture %s: closing with %d compressed bytes unwritten", self.venue, lost
                    )
                    self.stats["bytes_dropped"] += lost
                self._close_file()
                return True
        return False

    def _write_pending(self) -> None:
        while self._retry:
            hour, member = self._retry[0]
            try:
                f = self._file_for(hour)
                pos = f.tell()
                try:
                    f.write(member)
                    f.flush()
                except OSError:
                    # Cut a partial member off again, or it would hide every later member.
                    f.truncate(pos)
                    raise
            except OSError as e:
                self.stats["write_errors"] += 1
                self._close_file()
                held = sum(len(m) for _, m in self._retry)
                log.error("capture %s: write failed (%s); %d bytes held", self.venue, e, held)
                while held > self._max_retry and len(self._retry) > 1:
                    dropped = len(self._retry.pop(0)[1])
                    held -= dropped
                    self.stats["bytes_dropped"] += dropped
                return
            self._retry.pop(0)
            self.stats["members"] += 1
            self.stats["bytes_out"] += len(member)

    def _file_for(self, hour: int) -> IO[bytes]:
        if self._file is None or hour != self._file_hour:
            self._close_file()
            path = capture_path(self.dir, self.venue, hour * _HOUR_NS)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "ab")  # noqa: SIM115 - kept open across members
            self._file_hour = hour
        return self._file

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as e:
                log.error("capture %s: close failed: %s", self.venue, e)
            self._file = None


class CaptureReader:
    """Iterator of ``(ts_ns, frame)`` over a capture file (ours or hftbacktest's).

    Timestamps are normalised to ns by digit count (16 digits: µs, 13: ms, 10: s). A file cut
    short inside its last gzip member (a crash while writing it) ends the iteration cleanly:
    the complete lines decompressed from that member are still yielded (a deflate prefix is
    exact; only its checksum cannot be verified), its partial last line is not, and after the
    iteration ``truncated`` is True and ``unreadable_bytes`` is the compressed size of the
    unfinished member. A corrupt member stops the iteration the same way, with ``corrupt``
    set. Lines that do not start with a timestamp are counted in ``bad_lines`` and skipped."""

    def __init__(self, path: Path | str, chunk_size: int = 1 << 20) -> None:
        self.path = Path(path)
        self.frames = 0
        self.members = 0
        self.bad_lines = 0
        self.truncated = False
        self.corrupt = False
        self.unreadable_bytes = 0
        self._chunk = chunk_size
        self._it = self._read()

    def __iter__(self) -> CaptureReader:
        return self

    def __next__(self) -> tuple[int, bytes]:
        return next(self._it)

    def _lines(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        for line in data.split(b"\n"):
            if not line:
                continue
            sp = line.find(b" ")
            scale = _TS_SCALE.get(sp)
            if scale is None or not line[:sp].isdigit():
                self.bad_lines += 1
                continue
            self.frames += 1
            frame = line[sp + 1 :]
            if frame[:1] == b"~":
                frame = base64.b64decode(frame[1:])
            yield int(line[:sp]) * scale, frame

    def _read(self) -> Iterator[tuple[int, bytes]]:
        size = self.path.stat().st_size
        offset = 0  # file offset of the next unread compressed byte
        member_start = 0
        d: Any = None  # the decompressor of the current member
        tail = b""  # decompressed bytes after the last newline
        with open(self.path, "rb") as f:
            pending = b""
            while True:
                if not pending:
                    pending = f.read(self._chunk)
                    if not pending:
                        break
                if d is None:
                    if not pending.strip(b"\0"):  # zero padding after the last member
                        offset += len(pending)
                        pending = b""
                        continue
                    d = zlib.decompressobj(wbits=31)
                    member_start = offset
                try:
                    out = d.decompress(pending)
                except zlib.error as e:
                    self.corrupt = True
                    self.unreadable_bytes = size - member_start
                    log.warning(
                        "%s: corrupt gzip member at byte %d (%s): %d bytes unreadable",
                        self.path,
                        member_start,
                        e,
                        self.unreadable_bytes,
                    )
                    return
                used = len(pending) - len(d.unused_data)
                offset += used
                data = tail + out
                cut = data.rfind(b"\n") + 1
                tail = data[cut:]
                yield from self._lines(data[:cut])
                if d.eof:  # member complete (CRC checked): a last line may lack its newline
                    self.members += 1
                    yield from self._lines(tail)
                    tail = b""
                    pending = d.unused_data
                    d = None
                else:
                    pending = b""
        if d is not None:
            self.truncated = True
            self.unreadable_bytes = size - member_start
            log.warning(
                "%s: truncated in its last gzip member: %d compressed bytes unreadable "
                "(%d decompressed bytes of a partial line dropped)",
                self.path,
                self.unreadable_bytes,
                len(tail),
            )


def iter_capture(path: Path | str) -> CaptureReader:
    """Iterate ``(ts_ns, frame bytes)`` over a capture file; see :class:`CaptureReader` for the
    truncation report (``reader.truncated``, ``reader.unreadable_bytes``)."""
    return CaptureReader(path)
