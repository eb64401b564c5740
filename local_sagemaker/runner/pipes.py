"""Pipe mode: each Pipe channel reaches each host as FIFOs `input/data/<channel>_<epoch>`, as SageMaker delivers it.

`<channel>_0` is made before the host's processes start. Once a reader opens it, the host's units of the channel
(channels.Source: key order, its shard, its shuffle for that epoch) stream through it, then EOF. When the reader
has closed it (at EOF, or early: the developer guide lets a reader close an epoch before its end),
`<channel>_1` appears and streams them again, and so on, as long as the job runs.

A writer never holds the job up: it opens its FIFO non-blocking and looks again every few milliseconds while no
reader has it, writes only when the FIFO has room (poll), and every wait also watches the job's cancel event, so
`Pipes.close()` ends every writer thread within a poll period whatever the reader does (never opens the FIFO, stops
reading midway, is killed). Throughput: each FIFO's buffer is raised to the system's maximum (1 MiB by default) and
objects are written from memory in buffer-sized slices without copies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import os
import select
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from local_sagemaker.runner.channels import ChannelError, ObjectRef, Part, Source, Where
from local_sagemaker.runner.hostdirs import HostDirs

#: The longest a writer waits between two looks for its reader (it starts at 1 ms and doubles up to this).
LOOK_SECONDS = 0.025
#: The longest a writer waits for room in its FIFO before it looks at the cancel event again.
ROOM_MILLISECONDS = 100
#: The FIFO buffer asked for (Linux caps it at /proc/sys/fs/pipe-max-size); also the largest single write.
PIPE_BYTES = 1 << 20
#: dmlc RecordIO (MXNet's, which RecordWrapperType RecordIO means): a magic word, then (flag << 29 | length).
RECORDIO_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)


def fifo_path(host: HostDirs, channel: str, epoch: int) -> Path:
    """`/opt/ml/input/data/<channel>_<epoch>` of the host."""
    return host.data_dir / f"{channel}_{epoch}"


def recordio(data: bytes) -> Iterator[bytes]:
    """`data` as one dmlc RecordIO record: split wherever the magic word sits 4-byte aligned in it (the reader puts
    it back), each piece behind its header (flag 0 whole, 1 first, 2 middle, 3 last) and padded to 4 bytes."""
    cuts: list[int] = []
    at = data.find(_MAGIC_BYTES)
    while at >= 0:
        if at % 4 == 0:
            cuts.append(at)
        at = data.find(_MAGIC_BYTES, at + 1)
    starts = [0, *(cut + 4 for cut in cuts)]
    ends = [*cuts, len(data)]
    last = len(starts) - 1
    for number, (start, end) in enumerate(zip(starts, ends, strict=True)):
        flag = 0 if last == 0 else 1 if number == 0 else 3 if number == last else 2
        size = end - start
        yield struct.pack("<II", RECORDIO_MAGIC, flag << 29 | size)
        yield data[start:end] if (start, end) != (0, len(data)) else data
        if size % 4:
            yield bytes(4 - size % 4)


class ChannelPipe:
    """The FIFOs of one channel on one host, and the thread that feeds them."""

    def __init__(self, where: Where, source: Source, host: HostDirs, hosts: int, cancel: threading.Event) -> None:
        self.where = where
        self.source = source
        self.host = host
        self.hosts = hosts
        self.cancel = cancel
        self.failure: str | None = None
        label = f"pipe-{host.root.parent.name}-{host.name}-{source.name}"  # the job folder's name begins with the job's
        self._thread = threading.Thread(target=self._run, name=label, daemon=True)

    def start(self) -> None:
        os.mkfifo(fifo_path(self.host, self.source.name, 0), 0o600)
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        epoch = 0
        try:
            while not self.cancel.is_set():
                path = fifo_path(self.host, self.source.name, epoch)
                if epoch:
                    os.mkfifo(path, 0o600)
                fd = self._wait_for_reader(path)
                if fd is None:
                    return
                try:
                    self._stream(fd, epoch)
                finally:
                    os.close(fd)
                if not self._wait_until_closed(path):
                    return
                epoch += 1
        except ChannelError as error:
            self.failure = str(error)
        except OSError as error:
            self.failure = (f"InternalServerError: the local runner could not feed {self.source.name}'s FIFO on "
                            f"{self.host.name}: {error.strerror or error}")

    def _looks(self) -> Iterator[None]:
        """Yields each time to look again: 1 ms, then doubling up to LOOK_SECONDS; ends when the job is cancelled."""
        wait = 0.001
        while not self.cancel.is_set():
            yield
            if self.cancel.wait(wait):
                return
            wait = min(wait * 2, LOOK_SECONDS)

    def _wait_for_reader(self, path: Path) -> int | None:
        """The FIFO's write end once a reader has opened it; None when the job ended first."""
        for _ in self._looks():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as error:
                if error.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                continue
            resize = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only; elsewhere the default buffer works too
            if resize is not None:
                with contextlib.suppress(OSError):  # a lower system limit: the buffer stays as it is
                    fcntl.fcntl(fd, resize, PIPE_BYTES)
            return fd
        return None

    def _wait_until_closed(self, path: Path) -> bool:
        """Whether every reader has closed the FIFO (it has no reader once a non-blocking writer open says ENXIO);
        False when the job ended first."""
        for _ in self._looks():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
            except OSError as error:
                if error.errno == errno.ENXIO:
                    return True
                raise
        return False

    def _stream(self, fd: int, epoch: int) -> None:
        """This epoch's bytes into the FIFO until they end, the reader closes it, or the job ends."""
        room = select.poll()
        room.register(fd, select.POLLOUT)
        for piece in self._pieces(epoch):
            view = memoryview(piece)
            while view:
                if self.cancel.is_set():
                    return
                try:
                    view = view[os.write(fd, view[:PIPE_BYTES]):]
                except BlockingIOError:
                    room.poll(ROOM_MILLISECONDS)
                except BrokenPipeError:
                    return  # the reader closed this epoch early

    def _pieces(self, epoch: int) -> Iterator[bytes]:
        for unit in self.source.share(self.hosts, self.host.index, epoch):
            for part in unit:
                body = self._body(part)
                if body is None:
                    continue
                if self.source.record_io:
                    yield from recordio(body)
                else:
                    yield body

    def _body(self, part: Part) -> bytes | None:
        if not isinstance(part, ObjectRef):
            return part
        try:
            body = self.where.read(part.bucket, part.key)
        except KeyError:
            return None  # deleted since the listing, as File mode skips it
        if not self.source.gzip:
            return body
        try:
            return gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            raise ChannelError(f"ClientError: channel {self.source.name}: {part.uri} is not gzip data "
                               "(the channel's CompressionType is Gzip)") from None


class Pipes:
    """Every Pipe channel's FIFOs on every host of a job; `close()` ends their writers."""

    def __init__(self, where: Where, sources: Sequence[Source], hosts: Sequence[HostDirs]) -> None:
        self.cancel = threading.Event()
        self.channels = [ChannelPipe(where, source, host, len(hosts), self.cancel)
                         for source in sources for host in hosts]

    def start(self) -> None:
        for channel in self.channels:
            channel.start()

    @property
    def failure(self) -> str | None:
        """The first writer's failure (the job's FailureReason), if any."""
        return next((channel.failure for channel in self.channels if channel.failure), None)

    def close(self, timeout: float = 5.0) -> None:
        """Cancels every writer and waits for its thread (each notices within a poll period)."""
        self.cancel.set()
        for channel in self.channels:
            channel.join(timeout)
