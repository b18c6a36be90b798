"""Run hadaemon inside synchronous legacy code: the reactor in a background thread.

``handle = hadaemon.embed.start(config="etc/hadaemon.toml")`` starts the daemon and
returns once it has started; ``handle.call(fn, ...)`` runs ``fn`` on the reactor thread and
returns its result; ``handle.submit`` returns a ``concurrent.futures.Future``;
``handle.stop()`` stops everything. See docs/embedding.md.
"""

from hadaemon.embed.errors import (
    AlreadyRunning,
    CallTimeout,
    Deadlock,
    EmbedError,
    Forked,
    NotRestartable,
    StartupFailed,
    Stopped,
    WrongReactor,
)
from hadaemon.embed.handle import Handle, start
from hadaemon.embed.subscriptions import EventIterator, EventSubscription

__all__ = [
    "AlreadyRunning",
    "CallTimeout",
    "Deadlock",
    "EmbedError",
    "EventIterator",
    "EventSubscription",
    "Forked",
    "Handle",
    "NotRestartable",
    "StartupFailed",
    "Stopped",
    "WrongReactor",
    "start",
]
