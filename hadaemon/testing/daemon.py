"""Running the real daemon as a child process, for tests of whole-process behaviour."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from hadaemon.testing.processes import ChildProcesses, dump_stacks_and_kill

STARTED_MARK = "hadaemon started:"


def toml_dumps(data: Mapping[str, Any]) -> str:
    """A small TOML writer for test configs (tables, scalars, arrays, inline tables)."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str | pathlib.PurePath):
            text = str(v).replace("\\", "\\\\").replace('"', '\\"')
            return f'"{text}"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, Mapping):
            return "{" + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + "}"
        raise TypeError(f"cannot write {type(v).__name__} as TOML")

    def key(k: str) -> str:
        return k if k.replace("_", "").replace("-", "").isalnum() else value(k)

    def table(name: str, body: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if not isinstance(v, Mapping)}
        subtables = {k: v for k, v in body.items() if isinstance(v, Mapping)}
        lines.append(f"[{name}]")
        lines.extend(f"{key(k)} = {value(v)}" for k, v in scalars.items())
        lines.append("")
        for k, v in subtables.items():
            table(f"{name}.{key(k)}", v)

    for name, body in data.items():
        table(key(name), body)
    return "\n".join(lines)


def write_config(path: pathlib.Path, sections: Mapping[str, Any]) -> pathlib.Path:
    """Write ``sections`` as a TOML config file at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(toml_dumps(sections))
    return path


class DaemonProcess:
    """``hadaemon run`` (or twistd) on a config, in its own process group.

    ``start()`` returns once the daemon logged that it started; ``stop()`` sends a
    signal and returns the exit status. The output is kept in a file for assertions.
    """

    def __init__(
        self,
        config: pathlib.Path,
        *,
        processes: ChildProcesses,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: pathlib.Path | None = None,
    ) -> None:
        self.config = config
        self._processes = processes
        self.command = list(command) if command is not None else [
            sys.executable, "-m", "hadaemon", "run", "--config", str(config)
        ]
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd or config.parent
        self.log_path = config.parent / f"{config.stem}.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0, wait_for: str = STARTED_MARK) -> DaemonProcess:
        self._out = self.log_path.open("wb")
        self.proc = self._processes.spawn(
            self.command, stdout=self._out, stderr=subprocess.STDOUT, env=self.env,
            cwd=str(self.cwd),
        )
        self.wait_for_output(wait_for, timeout)
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        """Wait until ``text`` appears in the output; fail with the output if it dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"daemon exited with {self.proc.returncode} before {text!r}:\n"
                    + self.output()[-4000:]
                )
            time.sleep(0.02)
        raise TimeoutError(f"no {text!r} within {timeout}s:\n" + self.output()[-4000:])

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        """The exit status; a daemon still running after ``timeout`` is made to write its
        threads' stacks (SIGUSR2), killed, and reported with the end of its output."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            dump_stacks_and_kill(self.proc)
            raise TimeoutError(
                f"the daemon did not exit within {timeout}s; the end of its output:\n"
                + self.output()[-12000:]
            ) from None
        finally:
            self._out.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the daemon and return its exit status."""
        self.send_signal(sig)
        return self.wait(timeout)
