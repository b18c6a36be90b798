"""The console's files: served from the package with their real types (a browser refuses
a module script or a style sheet of another type under ``nosniff``), with the security
headers, and shipped by a non-editable install."""

from __future__ import annotations

import http.client
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from hadaemon.web.resource import STATIC
from tests.console.helpers import ROOT, ConsoleDaemon
from tests.core.test_packaging import IGNORE

TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
         ".svg": "image/svg+xml", ".png": "image/png"}


def get(daemon: ConsoleDaemon, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def test_every_static_file_has_its_type_and_the_security_headers(
    console_daemon: ConsoleDaemon,
) -> None:
    files = [p for p in STATIC.rglob("*") if p.is_file() and p.suffix in TYPES]
    assert any(p.suffix == ".js" and p.parent.name == "pages" for p in files), files
    for file in files:
        path = "/" + file.relative_to(STATIC).as_posix()
        status, headers, body = get(console_daemon, path)
        assert status == 200, path
        assert headers["content-type"].split(";")[0] == TYPES[file.suffix], path
        assert body == file.read_bytes(), path
        assert headers["content-security-policy"].startswith("default-src 'self'"), path
        assert headers["x-content-type-options"] == "nosniff", path
    status, headers, _ = get(console_daemon, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    status, headers, _ = get(console_daemon, "/js/nothing.js")
    assert status == 404 and headers["content-type"].startswith("application/json")


def test_no_inline_script_or_style_that_the_csp_would_block() -> None:
    index = (STATIC / "index.html").read_text()
    assert "<script>" not in index and "style=" not in index and "onclick" not in index
    assert 'src="js/app.js"' in index and 'type="module"' in index


@pytest.mark.timeout(600)
def test_a_wheel_ships_the_whole_static_tree(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "src"  # (a build writes build/ and *.egg-info into its source)
    shutil.copytree(ROOT, source, ignore=IGNORE)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--no-deps",
         "-q", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=540)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("hadaemon-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {"hadaemon/web/static/" + p.relative_to(STATIC).as_posix()
              for p in STATIC.rglob("*") if p.is_file()}
    assert wanted and wanted <= names, sorted(wanted - names)
