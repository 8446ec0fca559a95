"""Issue 13 through the real table, stream and measure: an edit or new counts update the stored post and open no
second wait; a spam-labelled mention is stored and opens none."""

from __future__ import annotations

from datetime import timedelta

from replyclock.models.domain import Brand, Engagement
from tests.support.builders import T0, customer
from tests.support.expectations import stored_waits
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme")


def test_an_edit_updates_the_stored_post_and_opens_no_second_wait(pipeline: Pipeline) -> None:
    # Given a measured mention
    pipeline.add_brands([ACME])
    first = customer("1", 0, "@acme my ordr is late", conversation="c1")
    pipeline.write([first])
    pipeline.run()

    # When its edit is read (same identity, new text, edit time and counts)
    edited = first.model_copy(
        update={
            "text": "@acme my order is late",
            "edited_at": T0 + timedelta(minutes=3),
            "engagement": Engagement(likes=4),
        }
    )
    assert pipeline.write([edited]) == 0
    pipeline.run()

    # Then the stored post has the new text and counts, and the lane still holds one wait
    stored = pipeline.posts.get("x", "c1", "1")
    assert stored is not None
    assert (stored.text, stored.engagement) == ("@acme my order is late", Engagement(likes=4))
    assert stored.edited_at == T0 + timedelta(minutes=3)
    waits = stored_waits(pipeline.conversations, [("x", "c1")])
    assert {lane: [wait.start_post_id for wait in found] for lane, found in waits.items()} == {
        ("x", "c1", "acme", "alice"): ["1"]
    }


def test_a_re_read_without_changes_writes_nothing(pipeline: Pipeline) -> None:
    post = customer("1", 0, "@acme hi", conversation="c1").model_copy(update={"engagement": Engagement(likes=1)})
    pipeline.write([post])
    before = len(pipeline.stream_records())

    pipeline.write([post])

    assert len(pipeline.stream_records()) == before


def test_a_spam_labelled_mention_is_stored_and_opens_no_wait(pipeline: Pipeline) -> None:
    # Given a spam-labelled mention and a normal one in another thread
    pipeline.add_brands([ACME])
    spam = customer("1", 0, "@acme free crypto", conversation="c1", author="bot").model_copy(
        update={"labels": ("spam",)}
    )
    pipeline.write([spam, customer("2", 1, "@acme help", conversation="c2")])
    pipeline.run()

    # Then both are stored, and only the normal one waits
    assert pipeline.posts.get("x", "c1", "1") is not None
    waits = stored_waits(pipeline.conversations, [("x", "c1"), ("x", "c2")])
    assert {lane: [wait.start_post_id for wait in found] for lane, found in waits.items()} == {
        ("x", "c2", "acme", "alice"): ["2"]
    }
