"""The command line answers every bad export with one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.cli import main, read_export, rejected_report
from devtools.localstack.http_api import QuietHTTPServer

HEADER = "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
ROW = "1,alice,True,Tue Oct 31 22:10:47 +0000 2017,@acme help,2,\n2,acme,False,Tue Oct 31 22:20:47 +0000 2017,hi,,1\n"


def bad_inputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "columns.csv").write_text("a,b,c\n1,2,3\n")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "huge.csv").write_text(HEADER + f'3,bob,True,Tue Oct 31 22:10:47 +0000 2017,"{"x" * 2_000_000}",,\n')
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "header-only.csv").write_text(HEADER)
    return {path.name: path for path in tmp_path.iterdir()} | {"missing.csv": tmp_path / "missing.csv"}


CASES = [
    "empty.csv",
    "columns.csv",
    "binary.csv",
    "huge.csv",
    "folder.csv",
    "binary.jsonl",
    "empty.jsonl",
    "header-only.csv",
    "missing.csv",
]


@pytest.mark.parametrize("name", CASES)
def test_replay_of_a_bad_export_is_one_line_and_a_non_zero_exit(tmp_path: Path, name: str) -> None:
    path = bad_inputs(tmp_path)[name]

    with pytest.raises(SystemExit) as exited:
        main(["replay", str(path)])

    message = exited.value.code
    assert isinstance(message, str) and message and "\n" not in message, message
    assert str(path) in message


@pytest.mark.parametrize("name", CASES)
def test_run_refuses_a_bad_export_before_starting_anything(tmp_path: Path, name: str) -> None:
    path = bad_inputs(tmp_path)[name]

    with pytest.raises(SystemExit) as exited:
        read_export(path, None)

    assert isinstance(exited.value.code, str) and "\n" not in exited.value.code


@pytest.mark.parametrize("name", CASES)
def test_run_of_a_bad_export_is_one_line_and_leaves_no_table_emulator_running(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given `replyclock run`, which launches DynamoDB Local before it reads the export (its JVM starts meanwhile)
    from devtools.localstack import emulator

    launched: list[StoppableServer] = []

    def launch(*_: object) -> tuple[StoppableServer, None]:
        launched.append(StoppableServer())
        return launched[-1], None

    monkeypatch.setattr(emulator, "launch_dynamodb_local", launch)

    # When the export is bad
    with pytest.raises(SystemExit) as exited:
        main(["run", "--replay", str(bad_inputs(tmp_path)[name]), "--port", "0", "--logs", str(tmp_path / "logs")])

    # Then it says so in one line, and whatever it launched is stopped
    message = exited.value.code
    assert isinstance(message, str) and message and "\n" not in message, message
    assert all(server.stopped for server in launched)


class StoppableServer:
    stopped = False

    def stop(self) -> None:
        self.stopped = True


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="is a directory"):
        main(["replay", str(bad_inputs(tmp_path)["folder.csv"])])


def test_the_installed_command_prints_one_line_on_stderr_and_exits_non_zero(tmp_path: Path) -> None:
    path = bad_inputs(tmp_path)["binary.csv"]

    done = subprocess.run(
        [sys.executable, "-m", "devtools.cli", "replay", str(path)], capture_output=True, text=True, check=False
    )

    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_rejected_lines_are_counted_with_their_first_reasons(tmp_path: Path) -> None:
    path = tmp_path / "some-bad.csv"
    path.write_text(HEADER + ROW + "3,carol,True,not a date,hello,,\n4,dave,True,,hey,,\n")

    export = read_export(path, None)
    report = rejected_report(export.rejected, export.reasons)

    assert export.rejected == 2 and len(export.posts) == 2
    assert report is not None and report.startswith("2 line(s) rejected, first: ")
    assert "created_at" in report
    assert rejected_report(0, ()) is None


def test_a_client_that_hangs_up_early_prints_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    server = QuietHTTPServer(("127.0.0.1", 0), object)  # type: ignore[arg-type]
    try:
        for error in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
            try:
                raise error
            except OSError:
                server.handle_error(io.BytesIO(), ("127.0.0.1", 1))
        try:
            raise ValueError("a real bug")
        except ValueError:
            server.handle_error(io.BytesIO(), ("127.0.0.1", 1))
    finally:
        server.server_close()

    errors = capsys.readouterr().err
    assert "BrokenPipeError" not in errors and "ConnectionResetError" not in errors
    assert "a real bug" in errors


@pytest.mark.parametrize("argument", [["--data", "kept"], ["--table", "local"]])
def test_asking_for_dynamodb_local_where_it_cannot_run_is_one_line(
    argument: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a machine where DynamoDB Local is not installed
    from devtools.localstack import dynamodb_local

    monkeypatch.setattr(dynamodb_local, "INSTALL_DIR", tmp_path / "none")

    # When the local stack is asked to keep its data there, or to run its table there
    with pytest.raises(SystemExit) as stopped:
        main(["run", "--port", "0", *[str(tmp_path / a) if a == "kept" else a for a in argument]])

    # Then it stops before starting anything, with one line saying why and what to do
    message = str(stopped.value.code)
    assert "cannot run here" in message and "make dynamodb-local" in message
    assert "\n" not in message
