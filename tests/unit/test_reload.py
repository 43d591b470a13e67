"""``run --reload``'s options, and what it watches: the app's source tree, found without
importing the app (tests/integration/test_reload.py runs it against Kafka)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from aiostream_kafka.cli import main
from aiostream_kafka.cli.errors import CliError
from aiostream_kafka.cli.reload import watched_paths


@pytest.fixture
def in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_package_apps_whole_package_is_watched(in_tmp: Path) -> None:
    name = f"pkg_{uuid.uuid4().hex[:8]}"
    (in_tmp / name / "service").mkdir(parents=True)
    (in_tmp / name / "__init__.py").write_text("raise AssertionError('the watcher never imports the app')\n")
    (in_tmp / name / "service" / "__init__.py").write_text("")
    assert watched_paths(f"{name}.service.app:app", []) == [(in_tmp / name).resolve()]


def test_a_top_level_modules_directory_is_watched(in_tmp: Path) -> None:
    name = f"mod_{uuid.uuid4().hex[:8]}"
    (in_tmp / f"{name}.py").write_text("raise AssertionError('the watcher never imports the app')\n")
    assert watched_paths(f"{name}:app", []) == [in_tmp.resolve()]


def test_reload_dirs_replace_the_default(in_tmp: Path) -> None:
    (in_tmp / "src").mkdir()
    assert watched_paths("anything:app", ["src"]) == [(in_tmp / "src").resolve()]
    with pytest.raises(CliError, match=r"--reload-dir .*nowhere: no such directory"):
        watched_paths("anything:app", ["nowhere"])


def test_a_module_that_is_not_there_has_nothing_to_watch(in_tmp: Path) -> None:
    with pytest.raises(CliError, match="module 'not_there_at_all' not found, so there is nothing to watch"):
        watched_paths("not_there_at_all.app:app", [])


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (
            ["--reload", "--processes", "2"],
            "--reload runs the app in one process, for development: drop --processes",
        ),
        (["--reload-dir", "."], "--reload-dir applies to --reload: add it"),
    ],
)
def test_options_that_do_not_go_with_reload_are_one_line_errors(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], options: list[str], error: str
) -> None:
    assert main(["run", "whatever:app", *options]) == 2
    assert capsys.readouterr().err == f"error: {error}\n"
