"""Child processes of the pipeline benchmark, and CPU time from each process's own accounting.

A child's CPU is read from ``/proc/<pid>/stat`` (utime + stime, every thread of it) while
it runs, so start-up can be left out by sampling after it; the harness's own CPU is
``time.process_time()``; the machine's busy time (every process) is ``/proc/stat``.
Every child is stopped in a ``finally`` (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = [
    "BenchError",
    "Child",
    "Fed",
    "LogLine",
    "cpu_seconds",
    "feed_to_exit",
    "python",
    "system_busy_seconds",
]

_TICKS: Final = os.sysconf("SC_CLK_TCK")
_STOP_GRACE_S: Final = 20.0
_TAIL: Final = 40


class BenchError(RuntimeError):
    """The benchmark cannot go on (a child failed, or a wait timed out): said in one line."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _TICKS


def system_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (all processes)."""
    first = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


@dataclass(frozen=True, slots=True)
class LogLine:
    """A JSON log line a child wrote, when it arrived, and the child's CPU at that moment."""

    event: str
    fields: Mapping[str, Any]
    at: float
    """``time.time()`` when the harness read it."""
    cpu: float


@dataclass(slots=True)
class Child:
    """A running child process: its stdout lines (a protocol) and its JSON log lines."""

    name: str
    process: asyncio.subprocess.Process
    watch: frozenset[str] = frozenset()
    """Log events (``event`` of a JSON line on stderr) to keep, with the CPU when seen."""
    lines: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    logs: list[LogLine] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)
    _seen: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def start(
        cls,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        watch: frozenset[str] = frozenset(),
    ) -> Child:
        """Start ``argv`` with ``env``; stdin and stdout are pipes, stderr is read for logs."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 20,
        )
        child = cls(name, process, watch)
        child._readers = [
            asyncio.create_task(child._read_stdout()),
            asyncio.create_task(child._read_stderr()),
        ]
        return child

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def cpu(self) -> float:
        """The child's CPU seconds so far."""
        return cpu_seconds(self.pid)

    async def _read_stdout(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while line := await stream.readline():
            await self.lines.put(line.decode("utf-8", "replace").rstrip("\n"))

    async def _read_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip("\n")
            self.tail = [*self.tail[-_TAIL + 1 :], text]
            if not self.watch or not any(f'"{name}"' in text for name in self.watch):
                continue
            try:
                document = json.loads(text)
            except json.JSONDecodeError:
                continue
            event = document.get("event") if isinstance(document, dict) else None
            if event in self.watch:
                try:
                    cpu = self.cpu()
                except OSError:
                    cpu = float("nan")
                self.logs.append(LogLine(event, document, time.time(), cpu))
                self._seen.set()

    def _describe(self) -> str:
        code = self.process.returncode
        state = "running" if code is None else f"exited with {code}"
        last = " | ".join(self.tail[-5:]) or "(no output on stderr)"
        return f"{self.name} ({state}); last lines: {last}"

    async def line(self, timeout_s: float, what: str) -> str:
        """The next line the child writes on stdout; ``BenchError`` if none in time."""
        try:
            return await asyncio.wait_for(self.lines.get(), timeout_s)
        except TimeoutError:
            msg = f"no {what} from {self._describe()} within {timeout_s:.0f} s"
            raise BenchError(msg) from None

    async def expect(self, prefix: str, timeout_s: float) -> str:
        """The next stdout line, which must start with ``prefix``; the rest of it."""
        text = await self.line(timeout_s, f"{prefix!r} line")
        if not text.startswith(prefix):
            msg = f"{self.name} said {text[:200]!r}, expected {prefix!r}: {self._describe()}"
            raise BenchError(msg)
        return text[len(prefix) :].strip()

    async def send(self, text: str) -> None:
        """Write one line to the child's stdin."""
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(text.encode() + b"\n")
        await stdin.drain()

    async def log(self, accept: Callable[[LogLine], bool], timeout_s: float, what: str) -> LogLine:
        """The first watched log line ``accept`` takes (waiting for it), else ``BenchError``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            for line in self.logs:
                if accept(line):
                    return line
            if self.process.returncode is not None:
                msg = f"{self.name} stopped before {what}: {self._describe()}"
                raise BenchError(msg)
            remaining = deadline - loop.time()
            if remaining <= 0:
                msg = f"no {what} within {timeout_s:.0f} s: {self._describe()}"
                raise BenchError(msg)
            self._seen.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._seen.wait(), min(remaining, 0.5))

    def check_running(self) -> None:
        """``BenchError`` if the child has exited."""
        if self.process.returncode is not None:
            raise BenchError(f"{self._describe()}")

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """``sig``, and SIGKILL if it has not exited after a grace period; never raises."""
        process = self.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                await asyncio.wait_for(process.wait(), _STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


_READ_SYSCALL: Final = {"x86_64": 0, "aarch64": 63}.get(os.uname().machine)


def _reading_stdin(pid: int) -> bool:
    """Whether process ``pid`` is blocked in ``read(0, ...)``: waiting for its input."""
    try:
        call = Path(f"/proc/{pid}/syscall").read_text(encoding="ascii").split()
    except OSError:
        return False
    return len(call) > 1 and call[0] == str(_READ_SYSCALL) and int(call[1], 16) == 0


@dataclass(frozen=True, slots=True)
class Fed:
    """A child fed its input on stdin once it was ready for it: its CPU when it began to
    wait for the input (start-up done), at exit (``os.wait4``), and its output."""

    code: int
    ready_cpu: float
    cpu: float
    stdout: str
    stderr: str


def _await_reading(pid: int, deadline: float, what: str, err_path: Path) -> None:
    while not _reading_stdin(pid):
        reaped, _, _ = os.wait4(pid, os.WNOHANG)
        if reaped == pid:
            tail = err_path.read_text(encoding="utf-8", errors="replace")[-600:]
            raise BenchError(f"{what} exited before reading its input: {tail}")
        if time.monotonic() > deadline:
            raise BenchError(f"{what} never read its input")
        time.sleep(0.005)


def _reap(pid: int, deadline: float, what: str) -> tuple[int, float]:
    """Exit code and CPU seconds (``os.wait4``) of child ``pid`` once it ends."""
    while True:
        reaped, status, usage = os.wait4(pid, os.WNOHANG)
        if reaped == pid:
            return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not finish in time")
        time.sleep(0.01)


def feed_to_exit(
    argv: Sequence[str],
    env: Mapping[str, str],
    data: bytes,
    timeout_s: float,
    workdir: Path,
    *,
    profiler: Sequence[str] = (),
) -> Fed:
    """Start ``argv`` with a pipe on stdin; once it blocks reading stdin, take its CPU,
    write ``data``, close the pipe, and run it to its end (killed after ``timeout_s``).
    ``profiler`` (py-spy's ``record`` command line, less ``--pid``) samples it meanwhile.

    Blocking on purpose: the harness does nothing else meanwhile.
    """
    if _READ_SYSCALL is None:
        msg = f"cannot tell when a child waits for input on {os.uname().machine}"
        raise BenchError(msg)
    what = " ".join(argv[1:6])
    out_path, err_path = workdir / "child.out", workdir / "child.err"
    read_end, write_end = os.pipe()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        pid = os.posix_spawn(argv[0], list(argv), dict(env), file_actions=[
            (os.POSIX_SPAWN_DUP2, read_end, 0),
            (os.POSIX_SPAWN_CLOSE, write_end),
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
        ])  # fmt: skip
    os.close(read_end)
    deadline = time.monotonic() + timeout_s
    pipe = os.fdopen(write_end, "wb")
    try:
        _await_reading(pid, deadline, what, err_path)
        ready = cpu_seconds(pid)
        sampler = (
            subprocess.Popen([*profiler, "--pid", str(pid)], stdout=subprocess.DEVNULL)
            if profiler
            else None
        )
        with pipe:
            pipe.write(data)
        code, cpu = _reap(pid, deadline, what)
        if sampler is not None:
            sampler.wait(_STOP_GRACE_S)  # it ends with the process it samples
    except BaseException:
        pipe.close()
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.wait4(pid, 0)
        raise
    return Fed(
        code=code,
        ready_cpu=ready,
        cpu=cpu,
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr=err_path.read_text(encoding="utf-8", errors="replace"),
    )


def python() -> str:
    """This interpreter (the venv's): children run Liaison and the helpers with it."""
    return sys.executable
