"""The ``homegear`` module that node processes import, shipped with hadaemon.

The supervisor puts this directory first on a node's ``PYTHONPATH``, so
``from homegear import Homegear`` in a node file finds :mod:`homegear` here. Everything in
this directory must import under any Python 3.7+ the node may run with, without Twisted,
without hadaemon and, if need be, without msgpack (a pure-Python codec is carried along).
"""

import contextlib
import os

CLIENT_DIR = os.path.dirname(os.path.abspath(__file__))
"""The directory to put first on a node's import path."""


def compile_for_nodes() -> None:
    """Write this Python's bytecode of the client's modules where it is missing or stale.

    Every node process imports them; without bytecode each node compiles them from
    source again (under ``PYTHONDONTWRITEBYTECODE``, or before anything wrote it), which
    costs it ~2 MiB of memory it keeps for good and ~15 ms of start-up. Done once here,
    in the daemon, whatever ``sys.dont_write_bytecode`` says; a read-only installation
    is left alone (an installer compiled it).
    """
    import importlib.util
    import py_compile

    for name in os.listdir(CLIENT_DIR):
        if not name.endswith(".py") or name == "__init__.py":
            continue
        source = os.path.join(CLIENT_DIR, name)
        cache = importlib.util.cache_from_source(source)
        try:
            if os.stat(cache).st_mtime >= os.stat(source).st_mtime:
                continue
        except OSError:
            pass
        with contextlib.suppress(OSError, py_compile.PyCompileError):
            py_compile.compile(source, cfile=cache, doraise=True)


compile_for_nodes()
