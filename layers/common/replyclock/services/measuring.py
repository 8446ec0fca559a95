"""measure: turn a conversation's stored posts into conversation states, one per brand."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from replyclock.dal.conversations import ConversationStore
from replyclock.dal.table import ConditionFailed
from replyclock.logic.waits import brands_in_conversation, carry_over_sweeper_statuses, compute_waits
from replyclock.models.domain import Brand, ConversationState, Wait, WaitStatus

# Concurrent writers of one conversation are rare (one shard, one sweeper); a few tries settle any race.
MAX_ATTEMPTS = 5


class BrandDirectory:
    """The configured brands, plus a default for a brand seen in data but not configured yet."""

    def __init__(self, brands: Mapping[str, Brand], default_for: Callable[[str], Brand]) -> None:
        self._brands = dict(brands)
        self._default_for = default_for
        self._ids_by_handle = {
            (channel, handle): brand.id
            for brand in self._brands.values()
            for channel, handles in brand.handles.items()
            for handle in handles
        }
        self._ids_by_own_id = {brand.id.lower(): brand.id for brand in self._brands.values()}

    def brand_for_handle(self, channel: str, handle: str) -> str | None:
        """The configured brand behind a handle; a brand without handles on a channel answers to its id."""
        configured = self._ids_by_handle.get((channel, handle))
        if configured:
            return configured
        brand_id = self._ids_by_own_id.get(handle)
        if brand_id and not self._brands[brand_id].handles.get(channel):
            return brand_id
        return None

    def get(self, brand_id: str) -> Brand:
        return self._brands.get(brand_id) or self._default_for(brand_id)


@dataclass
class MeasureOutcome:
    """What measuring one conversation changed: the states written and the waits that newly closed."""

    written: list[ConversationState] = field(default_factory=list)
    newly_closed: list[Wait] = field(default_factory=list)
    # Start posts of newly closed waits whose breach the sweeper already reported while they were open.
    breach_already_reported: set[str] = field(default_factory=set)


def measure_conversation(
    store: ConversationStore, brands: BrandDirectory, channel: str, conversation_id: str
) -> MeasureOutcome:
    """Recompute every brand's waits from the stored posts; write only states that changed."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return _measure_once(store, brands, channel, conversation_id)
        except ConditionFailed:
            if attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _measure_once(
    store: ConversationStore, brands: BrandDirectory, channel: str, conversation_id: str
) -> MeasureOutcome:
    posts, states = store.load(channel, conversation_id)
    outcome = MeasureOutcome()
    for brand_id in sorted(brands_in_conversation(posts, brands.brand_for_handle) | set(states)):
        previous = states.get(brand_id)
        waits = compute_waits(posts, brands.get(brand_id))
        if previous is not None:
            waits = carry_over_sweeper_statuses(waits, previous.waits)
        state = ConversationState(channel=channel, conversation_id=conversation_id, brand_id=brand_id, waits=waits)
        if state.same_waits(previous) or (previous is None and not waits):
            continue
        outcome.written.append(store.save(state, previous.version if previous else None))
        closed_before = {wait.start_post_id for wait in previous.waits if not wait.is_open} if previous else set()
        outcome.newly_closed.extend(w for w in waits if not w.is_open and w.start_post_id not in closed_before)
        if previous is not None and previous.open_wait is not None:
            if previous.open_wait.status is WaitStatus.BREACHED:
                outcome.breach_already_reported.add(previous.open_wait.start_post_id)
    return outcome


def unconfigured_brand(brand_id: str) -> Brand:
    """A brand seen in data before anyone configured it: its id is its handle, default policy."""
    return Brand(id=brand_id, name=brand_id)


def directory_from(brands: list[Brand]) -> BrandDirectory:
    return BrandDirectory({brand.id: brand for brand in brands}, unconfigured_brand)
