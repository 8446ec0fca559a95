"""Export replay: twcs CSV and JSONL of posts, in pages, resumable, read once per file version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from replyclock.connectors.http import Deadline
from replyclock.connectors.replay import Export, MalformedExport, ReplayConnector
from replyclock.models.domain import AuthorRole
from replyclock.models.sources import Source, SourceKind
from replyclock.services.ingesting import PollStatus
from tests.support.ingesting import FIXTURES, Harness, captured_logs


def replay_source(path: Path) -> Source:
    return Source(id="backfill", kind=SourceKind.REPLAY, replay_uri=str(path))


def small_pages(source: Source, path: Path, page_size: int = 2) -> Harness:
    def read() -> Export:
        return Export(fingerprint=str(path.stat().st_mtime_ns), text=path.read_text())

    def make_connector(deadline: Deadline) -> ReplayConnector:
        return ReplayConnector(source, read, page_size)

    return Harness(source=source, credentials={}, make_connector=make_connector)


def one_page_then_out_of_time() -> Deadline:
    calls = iter([60_000])
    return Deadline(lambda: next(calls, 0))


@pytest.fixture
def twcs_file(tmp_path: Path) -> Path:
    return Path(shutil.copy(FIXTURES / "replay" / "small_twcs.csv", tmp_path / "export.csv"))


@pytest.fixture
def jsonl_file(tmp_path: Path) -> Path:
    return Path(shutil.copy(FIXTURES / "replay" / "small_posts.jsonl", tmp_path / "export.jsonl"))


def test_a_twcs_export_becomes_posts_in_conversations_resolved_inside_the_file(twcs_file: Path) -> None:
    # Given a twcs file where replies point at their parents
    harness = Harness(source=replay_source(twcs_file), credentials={})

    # When it is replayed
    outcome = harness.poll()

    # Then every valid row is a post, its conversation the root of its reply chain
    assert outcome.status is PollStatus.COMPLETED
    assert harness.posts.ids() == {"9", "10", "11", "12", "14"}
    assert {post.id: post.conversation_id for post in harness.posts.posts.values()} == {
        "9": "9",
        "10": "9",
        "11": "9",
        "12": "12",
        "14": "12",
    }
    brand_reply = harness.posts.get("10")
    assert brand_reply.author_role is AuthorRole.BRAND
    assert brand_reply.brand_id == "AcmeHelp"
    assert harness.posts.get("9").text == "@AcmeHelp my order never arrived,\nit's been a week"


def test_a_bad_twcs_row_is_rejected_with_its_line_and_field(twcs_file: Path) -> None:
    # Given a row whose created_at is not a date
    harness = Harness(source=replay_source(twcs_file), credentials={})

    # When the file is replayed
    with captured_logs() as logs:
        outcome = harness.poll()

    # Then that row is counted and logged, the others stored
    assert outcome.rejected == 1
    rejected = [line for line in logs if line["message"] == "rejected item"]
    assert [(line["item_id"], line["field"]) for line in rejected] == [("line 7", "created_at")]


def test_a_jsonl_export_of_posts_fills_missing_conversations_from_reply_chains(jsonl_file: Path) -> None:
    # Given normalized posts, some without conversation_id, one line not JSON and one without created_at
    harness = Harness(source=replay_source(jsonl_file), credentials={})

    # When the file is replayed
    outcome = harness.poll()

    # Then replies join the root of their chain, and the two bad lines are rejected
    assert harness.posts.ids() == {"20", "21", "22"}
    assert {harness.posts.get(post_id).conversation_id for post_id in ("20", "21", "22")} == {"20"}
    assert harness.posts.get("21").brand_id == "AcmeHelp"
    assert outcome.rejected == 2


def test_a_replay_that_runs_out_of_time_resumes_at_its_offset(twcs_file: Path) -> None:
    # Given pages of two rows and time for one page only
    harness = small_pages(replay_source(twcs_file), twcs_file)

    # When the file is replayed
    stopped = harness.poll(one_page_then_out_of_time())

    # Then the first page is stored and the cursor holds its offset
    assert stopped.status is PollStatus.DEADLINE
    assert harness.posts.ids() == {"10", "9"}
    assert harness.state.cursor.value["offset"] == 2

    # When the next poll has time, it finishes the file, writing each post once
    finished = harness.poll()
    assert finished.status is PollStatus.COMPLETED
    assert harness.posts.ids() == {"9", "10", "11", "12", "14"}
    assert set(harness.posts.attempts.values()) == {1}
    assert harness.state.cursor.value["done"] is True


def test_a_finished_file_is_not_read_again(twcs_file: Path) -> None:
    # Given a file replayed to its end
    harness = Harness(source=replay_source(twcs_file), credentials={})
    harness.poll()

    # When the source is polled again
    again = harness.poll()

    # Then nothing is read or written
    assert again.pages == 0
    assert set(harness.posts.attempts.values()) == {1}


def test_a_changed_file_is_replayed_again_without_new_writes(twcs_file: Path) -> None:
    # Given a file replayed to its end, then rewritten with the same rows
    harness = Harness(source=replay_source(twcs_file), credentials={})
    harness.poll()
    twcs_file.write_bytes(twcs_file.read_bytes() + b"\n")

    # When the source is polled again
    again = harness.poll()

    # Then the file is read from the start, and the conditional put writes nothing new
    assert again.received == 5
    assert again.ingested == 0


def test_a_file_that_is_not_a_twcs_export_fails_the_poll(tmp_path: Path) -> None:
    # Given a CSV without the twcs columns
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    harness = Harness(source=replay_source(path), credentials={})

    # When it is replayed
    with pytest.raises(MalformedExport, match="missing columns"):
        harness.poll()

    # Then the lease is given back and the cursor untouched
    assert harness.state.lease is None
    assert harness.state.saves == []


def test_a_jsonl_delete_line_removes_the_post_once_its_page_is_stored(tmp_path: Path) -> None:
    # Given an export whose last line says post 21 was deleted upstream
    lines = (FIXTURES / "replay" / "small_posts.jsonl").read_text().splitlines()[:3]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join([*lines, '{"delete": {"channel": "x", "id": "21"}}']) + "\n")
    harness = small_pages(replay_source(path), path, page_size=10)

    # When it is replayed
    outcome = harness.poll()

    # Then the post is gone and the deletion counted; the others stay
    assert harness.posts.ids() == {"20", "22"}
    assert outcome.deleted == 1 and outcome.rejected == 0


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"delete": {"channel": "x"}}', "delete.id"),
        ('{"delete": {"channel": "X!", "id": "1"}}', "delete.channel"),
        ('{"delete": {"channel": "x", "id": "1"}, "id": "2"}', "delete"),
        ('{"delete": "21"}', "delete"),
    ],
)
def test_a_malformed_delete_line_is_rejected_with_its_field(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text(line + "\n")
    harness = small_pages(replay_source(path), path)

    with captured_logs() as logs:
        outcome = harness.poll()

    assert outcome.rejected == 1 and outcome.deleted == 0
    assert [entry["field"] for entry in logs if entry["message"] == "rejected item"] == [field]
