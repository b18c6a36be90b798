"""hadaemon.history's public names stay what they are (the web API and metrics use them)."""

from __future__ import annotations

import inspect

import hadaemon.history
from hadaemon.history import HistoryPlugin


def test_exports() -> None:
    assert sorted(hadaemon.history.__all__) == [
        "HistoryFileError", "HistoryPlugin", "HistorySettings", "HistoryUnavailable",
        "MAX_POINTS_LIMIT",
    ]


def test_query_signature_is_the_contracts() -> None:
    # what the web API serves at GET /api/history (docs/history.md)
    signature = inspect.signature(HistoryPlugin.query)
    assert inspect.iscoroutinefunction(HistoryPlugin.query)
    assert [(p.name, p.kind, p.default) for p in signature.parameters.values()] == [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        *[(name, inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.empty)
          for name in ("source", "peer_id", "channel", "name", "start", "end")],
        ("max_points", inspect.Parameter.KEYWORD_ONLY, 1000),
    ]
