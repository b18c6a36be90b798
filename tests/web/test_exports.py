"""hadaemon.web's public names stay what they are, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import hadaemon.web


def test_exports() -> None:
    assert hadaemon.web.__all__ == ["DEFAULT_PORT", "WebPlugin", "WebSettings"]
    for name in hadaemon.web.__all__:
        assert getattr(hadaemon.web, name) is not None
    assert hadaemon.web.WebPlugin.name == "web"
    assert hadaemon.web.DEFAULT_PORT == 8480


def test_the_commands_do_not_import_twisted_web() -> None:
    probe = ("import sys, hadaemon.web, hadaemon.web.cli, hadaemon.web.settings; "
             "print(sorted(m for m in sys.modules if m.startswith('twisted.web')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"
