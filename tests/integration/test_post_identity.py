"""One post, one identity: overlapping exports store a post once; deleted posts leave their threads and stay gone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Attr

from replyclock.dal.table import get_table
from replyclock.models.domain import Brand, Post, PostDeletion, WaitStatus
from tests.support.builders import T0, brand, customer
from tests.support.expectations import brand_directory, expected_waits, stored_waits
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme")
DELETED_AT = T0 + timedelta(days=1)


def stored_posts(pipeline: Pipeline) -> list[tuple[str, str]]:
    """(conversation, post id) of every post item in the table."""
    scan: dict[str, Any] = {"FilterExpression": Attr("item_type").eq("post")}
    found: list[tuple[str, str]] = []
    while True:
        page = get_table(pipeline.table_name).scan(**scan)
        found += [(str(item["conversation_id"]), str(item["id"])) for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return sorted(found)
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def thread() -> list[Post]:
    """A customer complains (1), a second customer replies (3), the brand answers 3 (5), 3 thanks (7)."""
    return [
        customer("1", 0, "@acme my order is late", conversation="1"),
        customer("3", 5, "@acme same here", reply_to="1", conversation="1", author="bob"),
        brand("5", 20, "@bob sorry, on it", reply_to="3", conversation="1"),
        customer("7", 30, "@acme thanks", reply_to="5", conversation="1", author="bob"),
    ]


def as_export_without(posts: list[Post], missing: set[str]) -> list[Post]:
    """The same posts as an export that lacks some of them roots them: at the nearest missing ancestor."""
    by_id = {post.id: post for post in posts}
    kept = [post for post in posts if post.id not in missing]
    rooted = []
    for post in kept:
        node = post
        while node.in_reply_to and node.in_reply_to in by_id and node.in_reply_to not in missing:
            node = by_id[node.in_reply_to]
        root = node.in_reply_to if node.in_reply_to else node.id
        rooted.append(post.model_copy(update={"conversation_id": root}))
    return rooted


@pytest.mark.parametrize("full_first", [True, False], ids=["full export first", "gapped export first"])
def test_a_post_in_two_overlapping_exports_is_stored_and_counted_once(pipeline: Pipeline, full_first: bool) -> None:
    # Given two exports of one thread: one whole, one that lacks post 3 (so it roots 5 and 7 at "3")
    pipeline.add_brands([ACME])
    full = thread()
    gapped = as_export_without(full, {"3"})
    assert {post.conversation_id for post in gapped if post.id in {"5", "7"}} == {"3"}

    # When both are ingested, in either order, and measured
    for export in (full, gapped) if full_first else (gapped, full):
        pipeline.posts.put_export_posts(export)
    pipeline.run()

    # Then every post is stored once (and, with the whole thread seen first, in its one conversation, measured
    # exactly as the thread alone; a gapped export seen first keeps the part it rooted elsewhere apart)
    stored = stored_posts(pipeline)
    assert sorted(post_id for _, post_id in stored) == ["1", "3", "5", "7"]
    if full_first:
        assert {conversation for conversation, _ in stored} == {"1"}
        expected = expected_waits(full, brand_directory([ACME]))
        assert stored_waits(pipeline.conversations, [("x", "1")]) == expected


def test_an_export_post_joins_the_conversation_its_parent_is_stored_in(pipeline: Pipeline) -> None:
    # Given a thread stored from one export
    pipeline.add_brands([ACME])
    pipeline.posts.put_export_posts(thread())

    # When a later export holds only a new reply to post 7 (rooted at 7 inside that file)
    later = customer("9", 40, "@acme and now it is broken", reply_to="7", conversation="7", author="bob")
    assert pipeline.posts.put_export_posts([later]) == 1

    # Then it is stored in the thread's conversation
    assert ("1", "9") in stored_posts(pipeline)


def test_a_deleted_mention_takes_its_wait_with_it(pipeline: Pipeline) -> None:
    # Given two customers waiting in one thread
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0, conversation="c1"), customer("2", 5, conversation="c1", author="bob")])
    pipeline.run()

    # When bob's mention is deleted upstream
    assert pipeline.posts.delete(PostDeletion(channel="x", id="2", conversation_id="c1"), DELETED_AT)
    pipeline.run()

    # Then only alice's wait is left, in the lanes and in the buckets
    stored = stored_waits(pipeline.conversations, [("x", "c1")])
    assert {lane: [wait.start_post_id for wait in waits] for lane, waits in stored.items()} == {
        ("x", "c1", "acme", "alice"): ["1"]
    }
    [(_, totals)] = pipeline.buckets.query("acme", "0000", "9999")
    assert totals.counters["waits"] == 1


def test_a_deleted_answer_reopens_the_wait_and_a_re_read_page_does_not_bring_it_back(pipeline: Pipeline) -> None:
    # Given a wait answered after 10 minutes
    pipeline.add_brands([ACME])
    answer = brand("2", 10, conversation="c1")
    pipeline.write([customer("1", 0, conversation="c1"), answer])
    pipeline.run()

    # When the answer is deleted, and later a poll re-reads the page that held it
    assert pipeline.posts.delete(PostDeletion(channel="x", id="2", conversation_id="c1"), DELETED_AT)
    pipeline.run()
    assert pipeline.write([answer]) == 0
    pipeline.run()

    # Then the wait is open again, and stays so
    stored = stored_waits(pipeline.conversations, [("x", "c1")])
    assert [(wait.end_post_id, wait.status) for wait in stored[("x", "c1", "acme", "alice")]] == [
        (None, WaitStatus.PENDING)
    ]
    [(_, totals)] = pipeline.buckets.query("acme", "0000", "9999")
    assert (totals.counters["open"], totals.counters["responded"]) == (1, 0)


def test_an_export_post_deleted_by_id_alone_is_found_by_its_identity_and_not_stored_again(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    posts = thread()
    pipeline.posts.put_export_posts(posts)

    assert pipeline.posts.delete(PostDeletion(channel="x", id="5"), DELETED_AT)
    assert pipeline.posts.put_export_posts(posts) == 0

    assert [post_id for _, post_id in stored_posts(pipeline)] == ["1", "3", "7"]


def test_deleting_a_post_that_is_not_stored_changes_nothing(pipeline: Pipeline) -> None:
    pipeline.write([customer("1", 0, conversation="c1")])
    before = boto3.resource("dynamodb").Table(pipeline.table_name).scan()["Count"]

    assert not pipeline.posts.delete(PostDeletion(channel="x", id="404", conversation_id="c1"), DELETED_AT)
    assert not pipeline.posts.delete(PostDeletion(channel="x", id="404"), DELETED_AT)

    assert boto3.resource("dynamodb").Table(pipeline.table_name).scan()["Count"] == before
