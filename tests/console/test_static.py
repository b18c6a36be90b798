"""The console's files: served from the package with their real types (a browser refuses
a module script or a style sheet of another type under ``nosniff``), with the security
headers, and shipped by a non-editable install."""

from __future__ import annotations

import http.client
import json
import pathlib
import re
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


def get(daemon: ConsoleDaemon, path: str, headers: dict[str, str] | None = None,
        ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
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


def test_static_files_are_cached_but_checked_at_every_use(
    console_daemon: ConsoleDaemon,
) -> None:
    # A fresh tab reads the console from the browser's cache (a 304 when unchanged);
    # the API's answers are never stored.
    status, headers, _ = get(console_daemon, "/js/app.js")
    assert status == 200 and headers["cache-control"] == "no-cache"
    modified = headers["last-modified"]
    status, headers, body = get(console_daemon, "/js/app.js", {"If-Modified-Since": modified})
    assert (status, body) == (304, b"")
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, body = get(console_daemon, "/js/app.js",
                                {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert status == 200 and body == (STATIC / "js" / "app.js").read_bytes()
    for path in ("/api/session", "/js/nothing.js"):
        assert get(console_daemon, path)[1]["cache-control"] == "no-store", path


def _imports(path: pathlib.Path) -> set[str]:
    """The files a module imports statically, as paths below static/js."""
    found = re.findall(r'^import [^;]*?from "([^"]+)";', path.read_text(), re.MULTILINE)
    return {(path.parent / name).resolve().relative_to(STATIC / "js").as_posix()
            for name in found}


def test_a_fresh_tab_fetches_the_modules_it_needs_at_once() -> None:
    # index.html preloads the whole module graph of app.js (nothing is found one import
    # at a time), and app.js preloads each page's imports with the page's module.
    js = STATIC / "js"
    index = (STATIC / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="js/([^"]+)">', index))
    graph, todo = set(), ["app.js"]
    while todo:
        name = todo.pop()
        if name not in graph:
            graph.add(name)
            todo.extend(_imports(js / name))
    assert preloaded == graph, (preloaded, graph)
    # (before the style sheets: they are all fetched together)
    assert index.index('rel="modulepreload"') < index.index('rel="stylesheet"')

    table = re.search(r"export const PAGE_IMPORTS = (\{.*?\});", (js / "app.js").read_text(),
                      re.DOTALL)
    assert table is not None
    declared = json.loads(re.sub(r"(\w+):", r'"\1":', table.group(1)).replace(",\n}", "\n}"))
    for page in sorted((js / "pages").glob("*.js")):
        needed = _imports(page) - graph  # (the shell's modules are there already)
        assert needed == set(declared.get(page.stem, [])), (page.name, needed)


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
