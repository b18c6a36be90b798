"""The node spawner and reaper: a small process that starts the nodes and outlives a
killed daemon to end their process groups.

Why a process of its own: starting a node from the daemon costs its reactor a fork of a
large process, or (vfork) a wait until the child has exec'd, which on a busy machine
means waiting for a CPU: tens of milliseconds per node. This process is small and has no
reactor to hold up; the daemon only sends it a message. Nothing from hadaemon is
imported here, and it stays single-threaded (it forks).

Two ways to start a node (``[nodes] spawn``, see docs/nodes.md):

- ``fork`` (the default): this process is a *zygote*. It starts as a node's interpreter
  does (``python reaper_process.py``: site imported, the nodes' start-up environment),
  imports hadaemon's node client once (from its directory, as a node imports it), and
  forks each node from there *without* exec: the child becomes what ``python file.py
  <argv>`` would be (see :meth:`Zygote.become` and :func:`run`) and runs the node's
  file as ``__main__``. A node skips the interpreter's start-up and the imports of the
  client's dependencies (msgpack, threading, ...), most of what it costs; the client's
  own small modules are dropped in the child and imported by the node itself (they take
  its token as they are imported). A node that cannot be started faithfully so (another
  interpreter, start-up variables that differ from this process's, a module loaded
  here that its path would shadow, not a ``.py`` file) is forked and exec'd instead,
  and the daemon is told why.
- ``exec``: started as ``python -I -S`` (standard library only, in milliseconds); every
  node is forked and exec'd.

The daemon starts it once, in a process group of its own (so killing the daemon's process
group spares it; terminal signals are ignored) but in the daemon's session (the nodes
share the daemon's scheduling autogroup, as when the daemon started them itself), with a
``SOCK_SEQPACKET`` socket as its stdin; the daemon holds the only other end. One
``marshal``-ed dict per packet (the same Python at both ends; ``json`` would put ``re``
into the memory of every node forked from here).

Daemon to spawner:

- ``{"op": "spawn", "id", "argv", "env", "cwd", "gate", "parent_env"}`` with three
  file descriptors
  attached (``SCM_RIGHTS``): the node's stdout and stderr (pipes the daemon reads) and
  one more that becomes the node's fd 3 (the read end of a pipe the daemon writes the
  node's token into once it knows the pid; ``gate``: the node is not exec'd, or its
  file not run, before that pipe reaches end-of-file, for clients that cannot read a
  token, whose identity is their pid; ``parent_env``: an environment variable to set
  to this process's pid). The node is forked here: leader of its own process group,
  stdin ``/dev/null``, its parent-death signal armed (SIGKILL when this process dies),
  no other file descriptor.
- ``{"op": "signal", "pid", "sig"}``: signal the node's process group, if the node has
  not been reaped (a zombie keeps its pid, and so its group id, reserved: an unrelated
  process that reused the number is never hit).

Spawner to daemon: ``{"op": "spawned", "id", "pid", "mode", "why"}`` at once after the
fork (``mode``: "fork" or "exec"; ``why``: in zygote mode, why this node was exec'd);
``{"op": "failed", "pid", "error"}`` when the exec (or the zygote's set-up) failed;
``{"op": "exited", "pid", "code"}`` (a signal as its negative number) once the node
exited, after whatever was left in its process group was killed and the node reaped.

End-of-file from the daemon (a clean stop, or the daemon died, however it died): every
node group still there gets SIGKILL, and this process exits.
"""

from __future__ import annotations

import sys

# What the interpreter's start-up (and site) imported: a node started afresh has these
# too; whatever this process imports beyond them must not be shadowed on a node's path.
_STARTUP = frozenset(sys.modules) - {"__future__"}
if __name__ == "__main__" and not sys.flags.safe_path:
    del sys.path[0]  # this script's directory (hadaemon/nodes): nothing to import there

import _signal  # type: ignore[import-not-found]  # noqa: E402  (signal.py: enum, in every node)
import _socket  # noqa: E402  (socket.py likewise: selectors, enum)
import contextlib  # noqa: E402
import fcntl  # noqa: E402
import io  # noqa: E402
import marshal  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402

TYPE_CHECKING = False  # typing is not imported at run time (every forked node's memory)
if TYPE_CHECKING:
    from typing import Any

_PR_SET_PDEATHSIG = 1
_MAX_PACKET = 1 << 22
_MAX_FDS = 8
_STAGE = 64  # descriptors are staged above this while they are moved into place
# Ignored here (terminal signals) or by Python (SIGPIPE, SIGXFSZ); an exec'd node starts
# with none (Python sets its own again).
_RESTORED = (_signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGTSTP,
             _signal.SIGPIPE, _signal.SIGXFSZ)
# Variables that shape an interpreter's start-up (flags, hash seed, warnings, encodings,
# the user site directory): a node forked from the zygote must have the zygote's.
# PYTHONPATH is not among them: the node's sys.path is made from its own.
_LOCALE = ("LC_ALL", "LC_CTYPE", "LANG", "HOME")
_SIGINT_EXIT = -2  # run()'s answer for an uncaught KeyboardInterrupt


def _interpreter(path: str, cwd: str) -> str:
    """An interpreter as exec'd, its directory resolved: the same file in the same
    directory (next to the same pyvenv.cfg) is the same interpreter, however named."""
    path = os.path.join(cwd, path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def _startup_vars(env: Any) -> dict[str, str]:
    return {k: v for k, v in env.items()
            if (k.startswith("PYTHON") and k != "PYTHONPATH") or k in _LOCALE}


def _libc() -> tuple[Any, Any]:
    """``prctl(2)`` and ``memmove(3)`` through ``_ctypes`` alone (None, None without it):
    the ``ctypes`` package would sit in the memory of every node forked from here."""
    try:
        import _ctypes

        ct: Any = _ctypes

        class _Int(ct._SimpleCData):  # type: ignore[misc]
            _type_ = "i"

        class _Pointer(ct._SimpleCData):  # type: ignore[misc]
            _type_ = "P"

        class _Size(ct._SimpleCData):  # type: ignore[misc]
            _type_ = "L"

        class _Prctl(ct.CFuncPtr):  # type: ignore[misc]
            _flags_ = ct.FUNCFLAG_CDECL | ct.FUNCFLAG_USE_ERRNO
            _restype_ = _Int

        class _Memmove(ct.CFuncPtr):  # type: ignore[misc]
            _flags_ = ct.FUNCFLAG_CDECL
            _restype_ = _Pointer
            _argtypes_ = (_Pointer, _Pointer, _Size)

        class _Libc:
            _handle = ct.dlopen(None, os.RTLD_NOW)

        return _Prctl(("prctl", _Libc())), _Memmove(("memmove", _Libc()))
    except Exception:
        return None, None


def _set_cmdline(memmove: Any, argv: list[str]) -> None:
    """Make ``/proc/<pid>/cmdline`` (``ps``, ``pgrep -f``) the node's: its arguments,
    NUL-separated, written over this process's own (the daemon starts the zygote with a
    blank argument that leaves room for them; NUL-padded, cut if they do not fit)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (Linux 3.5+)
    except (OSError, ValueError, IndexError):
        return
    size = end - start
    if memmove is None or start <= 0 or size <= 0:
        return
    data = b"\0".join(os.fsencode(arg) for arg in argv)[:size - 1]
    memmove(start, data.ljust(size, b"\0"), size)


def _ignore(*_: Any) -> None:
    pass


def _received_fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(memoryview(data)[:usable].cast("i"))
    return fds


class _Forked(BaseException):
    """Raised in a node forked from the zygote, up to :func:`main`, which runs it."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node


class Node:
    """How to run one node in a process forked from the zygote (planned before the fork)."""

    def __init__(self, argv: list[str], path: list[str]) -> None:
        self.argv = argv
        self.script = argv[1]
        self.path = path  # its sys.path, as a fresh interpreter would make it


class Zygote:
    """This process as the interpreter the nodes are forked from: the client preloaded,
    and what a fresh interpreter would have had, to tell a node's apart."""

    def __init__(self, client_dir: str, memmove: Any) -> None:
        self.memmove = memmove
        self.executable = _interpreter(sys.orig_argv[0], os.getcwd())
        self.site_path = list(sys.path)  # what start-up and site made of it (no PYTHONPATH)
        self.startup = _startup_vars(os.environ)
        self.tz = os.environ.get("TZ")
        self.client_dir = client_dir
        self.meta_path = list(sys.meta_path)
        self.client: list[str] = []  # the client's own modules: each node imports them
        self.why_not = ""
        if client_dir:
            self._preload(client_dir)
        # What a node's path might shadow: modules loaded here beyond start-up's, by file.
        self.loaded: dict[str, str] = {}
        for name, module in list(sys.modules.items()):
            origin = getattr(getattr(module, "__spec__", None), "origin", None)
            if ("." in name or name in _STARTUP or name in sys.builtin_module_names
                    or not isinstance(origin, str) or origin in ("frozen", "built-in")):
                continue
            self.loaded[name] = origin
        self.finder = sys.modules["_frozen_importlib_external"].PathFinder
        if len(os.listdir("/proc/self/task")) > 1:  # (an import started a thread)
            self.why_not = "the spawner is not single-threaded after preloading the client"

    def _preload(self, client_dir: str) -> None:
        before = set(sys.modules)
        saved = list(sys.path)
        sys.path[:] = [client_dir, *self.site_path]  # as on a node's path
        try:
            __import__("_homegear_zygote").preload()
        except Exception as exc:
            self.why_not = f"the node client could not be preloaded: {exc!r}"
        finally:
            sys.path[:] = saved
        prefix = os.path.join(client_dir, "")
        self.client = [name for name in sys.modules if name not in before and str(
            getattr(sys.modules[name], "__file__", "")).startswith(prefix)]

    def plan(self, message: dict[str, Any]) -> tuple[Node | None, str]:
        """The node to fork (or None, and why it is exec'd instead). In the spawner."""
        if self.why_not:
            return None, self.why_not
        argv: list[str] = message["argv"]
        env: dict[str, str] = message["env"]
        cwd: str = message["cwd"]
        if _interpreter(argv[0], cwd) != self.executable:
            return None, f"its interpreter {argv[0]} is not the spawner's"
        different = sorted(k for k in _startup_vars(env).keys() | self.startup.keys()
                           if env.get(k) != self.startup.get(k))
        if different:
            return None, (f"its environment sets {', '.join(different)} otherwise than the "
                          "spawner's (they shape an interpreter's start-up)")
        script = os.path.join(cwd, argv[1]) if len(argv) > 1 else ""
        if not script.endswith(".py") or not os.path.isfile(script):
            return None, "its file is not a Python source file"
        # sys.path as a fresh interpreter makes it: the script's directory, then
        # PYTHONPATH's entries and site's, each once (site.removeduppaths).
        pythonpath = env.get("PYTHONPATH", "")
        entries = [os.path.normpath(os.path.join(cwd, entry))
                   for entry in pythonpath.split(os.pathsep)] if pythonpath else []
        ahead = [os.path.dirname(os.path.realpath(script)),
                 *(e for i, e in enumerate(entries) if e not in entries[:i])]
        path = ahead + [e for e in self.site_path if e not in ahead[1:]]
        for name, origin in self.loaded.items():
            if name in self.client:
                continue  # (dropped: the node imports it itself, from its own path)
            try:
                spec = self.finder.find_spec(name, ahead)
            except Exception:  # (an unreadable directory: what a fresh import would hit)
                return None, f"its path could not be searched for {name}"
            if spec is not None and spec.origin is not None and spec.origin != origin:
                return None, (f"its path has another {name} ({spec.origin}) than the one "
                              "the spawner loaded")
        return Node(argv, path), ""

    def become(self, node: Node, env: dict[str, str]) -> None:
        """In the child, after its descriptors, cwd and signals: the rest of what a
        fresh ``python file.py <argv>`` with this environment would have."""
        os.environ.clear()
        os.environ.update(env)
        if env.get("TZ") != self.tz:
            import time

            time.tzset()
        sys.argv = node.argv[1:]
        sys.orig_argv = list(node.argv)
        sys.executable = os.path.join(os.getcwd(), node.argv[0])  # (as start-up makes it)
        _set_cmdline(self.memmove, node.argv)
        sys.path[:] = node.path
        sys.path_importer_cache.clear()  # (found here, for the spawner's path)
        for name in self.client:
            sys.modules.pop(name, None)
        sys.meta_path[:] = self.meta_path  # (homegear's asyncio hook: set as it is imported)
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
        _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
        _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)
        _new_stdio()
        import atexit

        atexit._clear()


def _new_stdio() -> None:
    """sys.stdin, stdout and stderr made for fds 0-2 as Python's start-up makes them
    (encoding and errors: this process's, from the same start-up variables)."""
    unbuffered = bool(getattr(sys.stdout, "write_through", False))  # (-u, PYTHONUNBUFFERED)
    for fd, name, old in ((0, "<stdin>", sys.stdin), (1, "<stdout>", sys.stdout),
                          (2, "<stderr>", sys.stderr)):
        write = fd > 0
        buffering = 0 if unbuffered and write else -1
        stream: Any = open(fd, "wb" if write else "rb", buffering, closefd=False)  # noqa: SIM115
        raw = stream if buffering == 0 else stream.raw
        raw.name = name
        text = io.TextIOWrapper(
            stream, old.encoding if old is not None else "utf-8",
            old.errors if old is not None else "strict", newline="\n",
            line_buffering=not unbuffered and (raw.isatty() or fd == 2),
            write_through=unbuffered)
        setattr(text, "mode", "w" if write else "r")  # noqa: B010  (as start-up sets it)
        setattr(sys, name[1:-1], text)
        setattr(sys, f"__{name[1:-1]}__", text)


class Spawner:
    """Forks nodes, reaps them, and reports both on the daemon's socket."""

    def __init__(self, control: _socket.socket, zygote: Zygote | None, prctl: Any) -> None:
        self.control = control
        self.zygote = zygote
        self.children: dict[int, int | None] = {}  # pid -> exec error pipe (until exec)
        self.errors: dict[int, int] = {}  # exec error pipe -> pid
        self.prctl = prctl
        self.pid = os.getpid()
        self.poll = select.poll()
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        _signal.set_wakeup_fd(wake_w)
        _signal.signal(_signal.SIGCHLD, _ignore)
        self.poll.register(control.fileno(), select.POLLIN)
        self.poll.register(self.wake_r, select.POLLIN)

    def tell(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the daemon is gone: end-of-file comes next
            self.control.send(marshal.dumps(message))

    def run(self) -> None:
        control = self.control.fileno()
        while True:
            # (An event may be stale: its descriptor closed by an earlier one of the same
            # batch, its number maybe reused already; every read here is non-blocking.)
            for fd, _events in self.poll.poll():
                if fd == self.wake_r:
                    try:
                        while os.read(self.wake_r, 4096):
                            pass
                    except OSError:
                        pass
                    self.reap()
                elif fd in self.errors:
                    self.exec_result(fd)
                elif fd == control and not self.request():
                    return

    def request(self) -> bool:
        try:
            data, ancdata, _flags, _addr = self.control.recvmsg(
                _MAX_PACKET, _socket.CMSG_SPACE(_MAX_FDS * 4), _socket.MSG_DONTWAIT)
        except (InterruptedError, BlockingIOError):
            return True
        except OSError:
            return False
        fds = _received_fds(ancdata)
        try:
            if not data:
                return False
            message = marshal.loads(data)
            if message["op"] == "spawn":
                self.spawn(message, fds)
            elif message["op"] == "signal":
                pid = message["pid"]
                if pid in self.children:
                    with contextlib.suppress(OSError):
                        os.killpg(pid, message["sig"])
        finally:
            for fd in fds:  # (none left in a forked node: moved into place there)
                os.close(fd)
        return True

    def spawn(self, message: dict[str, Any], fds: list[int]) -> None:
        node, why = self.zygote.plan(message) if self.zygote is not None else (None, "")
        error_r, error_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            self.child(message, fds, error_w, node)
            raise _Forked(node)  # type: ignore[arg-type]  # (child() returns with a node)
        os.close(error_w)
        os.set_blocking(error_r, False)
        self.children[pid] = error_r
        self.errors[error_r] = pid
        self.poll.register(error_r, select.POLLIN)
        self.tell({"op": "spawned", "id": message["id"], "pid": pid,
                   "mode": "exec" if node is None else "fork", "why": why})

    def child(self, message: dict[str, Any], fds: list[int], error_w: int,
              node: Node | None) -> None:
        """The forked node, single-threaded: exec it, or (a zygote's node) return once
        it is ready to run its file. Its errors are told to the daemon, never raised."""
        error = error_w
        try:
            os.setpgid(0, 0)
            if self.prctl is not None:
                self.prctl(_PR_SET_PDEATHSIG, _signal.SIGKILL, 0, 0, 0)
            if os.getppid() != self.pid:
                os._exit(1)  # the spawner died before the signal was armed
            _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
            _signal.set_wakeup_fd(-1)
            for sig in _RESTORED:
                _signal.signal(sig, _signal.SIG_DFL)
            null = os.open(os.devnull, os.O_RDONLY)
            staged = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _STAGE + i)
                      for i, fd in enumerate([null, *fds[:3]])]
            moved = fcntl.fcntl(error_w, fcntl.F_DUPFD_CLOEXEC, _STAGE + len(staged))
            for target, fd in enumerate(staged):
                os.dup2(fd, target, inheritable=True)
            error = os.dup2(moved, len(staged), inheritable=False)
            os.closerange(error + 1, os.sysconf("SC_OPEN_MAX"))
            fds.clear()  # (closed just now)
            if message.get("gate"):
                while os.read(3, 4096):
                    pass
                os.close(3)
            env = message["env"]
            if message.get("parent_env"):
                env[message["parent_env"]] = str(self.pid)
            os.chdir(message["cwd"])
            if node is None or self.zygote is None:
                os.execve(message["argv"][0], message["argv"], env)
            self.control.detach()  # (its fd 0 is the node's stdin now)
            self.zygote.become(node, env)
            os.close(error)  # end-of-file: started, as an exec would tell
            return
        except BaseException as exc:  # told to the daemon, never raised
            with contextlib.suppress(BaseException):
                os.write(error, str(exc).encode())
        os._exit(127)

    def exec_result(self, fd: int) -> None:
        """The node's exec error pipe: end-of-file (exec'd) or what went wrong."""
        try:
            text = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            text = b""
        pid = self.errors.pop(fd)
        self.poll.unregister(fd)
        os.close(fd)
        if pid in self.children:
            self.children[pid] = None
        if text:
            self.tell({"op": "failed", "pid": pid, "error": text.decode("utf-8", "replace")})

    def reap(self) -> None:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            error_fd = self.children.get(pid)
            if error_fd is not None:
                self.exec_result(error_fd)  # its exec error first: written before exiting
            with contextlib.suppress(OSError):  # before reaping: the group id is still ours
                os.killpg(pid, _signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            self.children.pop(pid, None)
            self.tell({"op": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})

    def end(self) -> None:
        for pid in self.children:
            with contextlib.suppress(OSError):
                os.killpg(pid, _signal.SIGKILL)


# -- a node forked from the zygote, once the spawner's stack is gone -----------------------

def run(node: Node) -> int:
    """Run the node's file as ``python file.py`` runs it: ``__main__`` as the interpreter
    makes it, an uncaught exception's traceback (from the file's own frame) through
    ``sys.excepthook``, SystemExit's code; the exit status (or ``_SIGINT_EXIT``)."""
    main: Any = type(sys)("__main__")
    main.__annotations__ = {}
    main.__builtins__ = sys.modules["builtins"]
    main.__file__ = node.script
    main.__cached__ = None
    main.__loader__ = sys.modules["_frozen_importlib_external"].SourceFileLoader(
        "__main__", node.script)
    sys.modules["__main__"] = main
    try:
        with io.open_code(node.script) as f:
            source = f.read()
        exec(compile(source, node.script, "exec", dont_inherit=True), main.__dict__)
    except SystemExit as exc:
        return _exit_status(exc)
    except BaseException as exc:
        tb = exc.__traceback__
        if tb is not None and tb.tb_frame.f_code is run.__code__:
            tb = tb.tb_next  # (this function's frame: not the node's)
        exc = exc.with_traceback(tb)
        sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
        sys.excepthook(type(exc), exc, tb)
        return _SIGINT_EXIT if isinstance(exc, KeyboardInterrupt) else 1
    return 0


def _exit_status(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{code}\n")
    return 1


def _die_by_sigint() -> None:
    """After an uncaught KeyboardInterrupt Python ends by SIGINT, once finalized: here the
    threads are joined and atexit run first, then the signal is taken."""
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    os.kill(os.getpid(), _signal.SIGINT)
    os._exit(130)


def main() -> None:
    # Terminal signals are for the daemon; this one ends only at end-of-file.
    for sig in (_signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGTSTP):
        _signal.signal(sig, _signal.SIG_IGN)
    prctl, memmove = _libc()  # (before the zygote lists what it loaded)
    zygote = Zygote(sys.argv[2], memmove) if sys.argv[1:2] == ["--zygote"] else None
    spawner = Spawner(_socket.socket(fileno=0), zygote, prctl)
    node: Node | None = None
    try:
        spawner.run()
    except _Forked as forked:
        node = forked.node
    finally:
        if os.getpid() == spawner.pid:
            spawner.end()
    if node is None:
        sys.exit(0)
    del spawner, zygote
    status = run(node)
    if status == _SIGINT_EXIT:
        _die_by_sigint()
    sys.exit(status)  # and the interpreter finalizes: threads joined, atexit, flush


if __name__ == "__main__":
    main()
