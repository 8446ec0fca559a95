"""measure against a concurrent writer of the same conversation state."""

from __future__ import annotations

from replyclock.dal.conversations import ConversationStore
from replyclock.models.domain import Brand, ConversationState, WaitStatus
from replyclock.services.measuring import directory_from, measure_conversation
from tests.support.builders import brand, customer
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme")


class RacingStore(ConversationStore):
    """Lets another writer (the sweeper, say) bump a lane just before measure's first write of a lane."""

    def __init__(self, table_name: str) -> None:
        super().__init__(table_name)
        self.races_left = 1

    def save(self, state: ConversationState, previous_version: int | None) -> ConversationState:
        if self.races_left and state.seq is None:
            self.races_left -= 1
            current = self.get(state.channel, state.conversation_id, state.brand_id, state.customer)
            rival = current or ConversationState(
                channel=state.channel,
                conversation_id=state.conversation_id,
                brand_id=state.brand_id,
                customer=state.customer,
            )
            super().save(rival, current.version if current else None)
        return super().save(state, previous_version)


def test_measure_retries_after_losing_a_version_race(pipeline: Pipeline) -> None:
    # Given a measured open wait, then its answer stored
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0)])
    pipeline.run()
    pipeline.write([brand("2", 5)])
    store = RacingStore(pipeline.table_name)

    # When measuring loses the first conditional write to a concurrent writer
    outcome = measure_conversation(store, directory_from([ACME]), "x", "c1")

    # Then it re-reads, recomputes and writes the answered wait on top of the rival's version
    state = pipeline.conversations.get("x", "c1", "acme", "alice")
    assert state is not None
    assert [wait.status for wait in state.waits] == [WaitStatus.MET]
    assert store.races_left == 0 and state.version == 3
    assert [wait.start_post_id for wait in outcome.newly_closed] == ["1"]


def test_measure_of_one_new_post_retries_after_losing_a_version_race(pipeline: Pipeline) -> None:
    # Given a lane with one answered wait and an open next one, then the brand's answer stored
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0), brand("2", 5)])
    pipeline.run()
    pipeline.write([customer("3", 10)])
    pipeline.run()
    before = pipeline.conversations.get("x", "c1", "acme", "alice")
    assert before is not None and before.open_wait is not None
    pipeline.write([brand("4", 15)])
    store = RacingStore(pipeline.table_name)

    # When measuring that one new post loses its conditional write to a concurrent writer
    outcome = measure_conversation(store, directory_from([ACME]), "x", "c1", ["4"])

    # Then it re-reads and writes the answered wait on top of the rival's version, announcing it once
    state = pipeline.conversations.get("x", "c1", "acme", "alice")
    assert state is not None
    assert [(wait.start_post_id, wait.end_post_id, wait.status) for wait in state.waits] == [("3", "4", WaitStatus.MET)]
    assert store.races_left == 0 and state.version == before.version + 2
    assert [wait.start_post_id for wait in outcome.newly_closed] == ["3"]


def test_measure_skips_the_write_when_nothing_changed(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0), brand("2", 5)])
    pipeline.run()

    outcome = measure_conversation(pipeline.conversations, directory_from([ACME]), "x", "c1")

    assert outcome.written == []
    state = pipeline.conversations.get("x", "c1", "acme", "alice")
    assert state is not None and state.version == 1
