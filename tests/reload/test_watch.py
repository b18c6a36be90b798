"""The file watcher on real files: inotify and polling, bursts coalesced, same bytes ignored."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest
from twisted.internet.task import Clock

from hadaemon.reload import FileWatcher
from hadaemon.testing import run_in_reactor, wait_until
from hadaemon.testing.waiting import sleep

MODES = ["inotify", "polling"]


def _watcher(reactor: Any, mode: str, seen: list[frozenset[pathlib.Path]],
             settle: float = 0.05) -> FileWatcher:
    watcher = FileWatcher(reactor, seen.append, settle=settle, poll_interval=0.05,
                          use_inotify=mode == "inotify")
    watcher.start()
    assert watcher.mode == mode
    return watcher


@pytest.mark.parametrize("mode", MODES)
def test_a_save_is_reported_once_with_its_file(tmp_path: pathlib.Path, mode: str) -> None:
    node = tmp_path / "node.py"
    node.write_text("x = 1\n")
    other = tmp_path / "other.py"
    other.write_text("y = 1\n")
    seen: list[frozenset[pathlib.Path]] = []

    async def scenario(reactor: Any) -> None:
        watcher = _watcher(reactor, mode, seen)
        watcher.watch([node])
        node.write_text("x = 2\n")
        await wait_until(reactor, lambda: seen, timeout=10, what="the change")
        assert seen == [frozenset({node})]
        # a file not watched (in the same directory) is never reported
        other.write_text("y = 2\n")
        node.write_text("x = 3\n")
        await wait_until(reactor, lambda: len(seen) == 2, timeout=10, what="the second")
        assert seen[1] == frozenset({node})
        watcher.stop()

    run_in_reactor(scenario, timeout=30)


@pytest.mark.parametrize("mode", MODES)
def test_a_burst_of_saves_is_one_change(tmp_path: pathlib.Path, mode: str) -> None:
    files = [tmp_path / f"f{i}.py" for i in range(3)]
    for path in files:
        path.write_text("0\n")
    seen: list[frozenset[pathlib.Path]] = []

    async def scenario(reactor: Any) -> None:
        # settle longer than the burst takes, even on a loaded machine
        watcher = _watcher(reactor, mode, seen, settle=0.5)
        watcher.watch(files)
        for round_ in range(5):
            for path in files:
                path.write_text(f"{round_}\n")
        await wait_until(reactor, lambda: seen, timeout=10, what="the burst")
        await sleep(reactor, 1.0)  # nothing more comes of it
        assert seen == [frozenset(files)]
        watcher.stop()

    run_in_reactor(scenario, timeout=30)


@pytest.mark.parametrize("mode", MODES)
def test_atomic_saves_creation_and_removal(tmp_path: pathlib.Path, mode: str) -> None:
    code = tmp_path / "service.py"
    code.write_text("a = 1\n")
    later = tmp_path / "sub" / "later.py"  # its directory does not exist yet
    seen: list[frozenset[pathlib.Path]] = []

    async def scenario(reactor: Any) -> None:
        watcher = _watcher(reactor, mode, seen)
        watcher.watch([code, later])
        # an editor's save: a new file renamed over the old one (a new inode)
        temporary = tmp_path / ".service.py.swp"
        temporary.write_text("a = 2\n")
        os.replace(temporary, code)
        await wait_until(reactor, lambda: seen, timeout=10, what="the atomic save")
        assert seen[-1] == frozenset({code})
        # a second atomic save: the watch follows the name, not the replaced inode
        temporary.write_text("a = 3\n")
        os.replace(temporary, code)
        await wait_until(reactor, lambda: len(seen) == 2, timeout=10, what="the second save")
        code.unlink()
        await wait_until(reactor, lambda: len(seen) == 3, timeout=10, what="the removal")
        assert seen[-1] == frozenset({code})
        later.parent.mkdir()
        later.write_text("b = 1\n")
        await wait_until(reactor, lambda: len(seen) == 4, timeout=10, what="the creation")
        assert seen[-1] == frozenset({later})
        watcher.stop()

    run_in_reactor(scenario, timeout=30)


@pytest.mark.parametrize("mode", MODES)
def test_same_bytes_and_unwatched_files_reload_nothing(tmp_path: pathlib.Path,
                                                       mode: str) -> None:
    node = tmp_path / "node.py"
    node.write_text("x = 1\n")
    marker = tmp_path / "marker.py"
    marker.write_text("m = 0\n")
    seen: list[frozenset[pathlib.Path]] = []

    async def scenario(reactor: Any) -> None:
        watcher = _watcher(reactor, mode, seen)
        watcher.watch([node, marker])
        node.write_text("x = 1\n")  # the same bytes (a new mtime)
        os.utime(node, (1, 1))
        marker.write_text("m = 1\n")  # a real change after it, to know it was looked at
        await wait_until(reactor, lambda: seen, timeout=10, what="the marker")
        assert seen == [frozenset({marker})]
        watcher.watch([marker])  # node no longer watched
        node.write_text("x = 2\n")
        marker.write_text("m = 2\n")
        await wait_until(reactor, lambda: len(seen) == 2, timeout=10, what="the marker again")
        assert seen[1] == frozenset({marker})
        watcher.stop()
        marker.write_text("m = 3\n")
        await sleep(reactor, 0.5)
        assert len(seen) == 2  # stopped: nothing after

    run_in_reactor(scenario, timeout=30)


def test_a_burst_that_never_settles_is_reported_within_twenty_settle_periods(
        tmp_path: pathlib.Path) -> None:
    clock = Clock()
    path = tmp_path / "busy.py"
    path.write_text("0\n")
    seen: list[frozenset[pathlib.Path]] = []
    watcher = FileWatcher(clock, seen.append, settle=0.1, poll_interval=0.05,
                          use_inotify=False)
    watcher.start()
    watcher.watch([path])
    for step in range(60):  # a change every poll, for 3 s
        path.write_text(f"{step}\n")
        os.utime(path, ns=(step * 10**9, step * 10**9))
        clock.advance(0.05)
    # without the limit it would wait for 0.1 s of quiet, which never comes
    assert len(seen) >= 1 and seen[0] == frozenset({path})
    watcher.stop()
    assert not clock.getDelayedCalls()


@pytest.mark.parametrize("how", ["removed", "renamed"])
@pytest.mark.parametrize("mode", MODES)
def test_a_directory_removed_and_made_again(tmp_path: pathlib.Path, mode: str,
                                            how: str) -> None:
    directory = tmp_path / "automation"
    directory.mkdir()
    code = directory / "lights.py"
    code.write_text("a = 1\n")
    elsewhere = tmp_path / "other" / "other.py"
    elsewhere.parent.mkdir()
    elsewhere.write_text("b = 1\n")
    seen: list[frozenset[pathlib.Path]] = []

    async def scenario(reactor: Any) -> None:
        watcher = _watcher(reactor, mode, seen)
        watcher.watch([code, elsewhere])
        if how == "removed":
            code.unlink()
            directory.rmdir()
        else:
            directory.rename(tmp_path / "automation.old")
            (tmp_path / "automation.old" / "lights.py").write_text("a = 9\n")  # not ours
        await wait_until(reactor, lambda: seen, timeout=10, what="the removal")
        assert seen[-1] == frozenset({code})
        directory.mkdir()
        code.write_text("a = 2\n")
        await wait_until(reactor, lambda: len(seen) == 2, timeout=10, what="the new file")
        assert seen[-1] == frozenset({code})
        # watched again (by inotify once the directory is back), and the other
        # directory's watch was never lost
        code.write_text("a = 3\n")
        await wait_until(reactor, lambda: len(seen) == 3, timeout=10, what="a later save")
        elsewhere.write_text("b = 2\n")
        await wait_until(reactor, lambda: len(seen) == 4, timeout=10, what="the other file")
        assert seen[-1] == frozenset({elsewhere}) and watcher.mode == mode
        if mode == "inotify":
            assert directory in watcher._directories
        watcher.stop()

    run_in_reactor(scenario, timeout=30)
