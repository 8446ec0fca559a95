"""A dry-run poll: what the next poll of a source would fetch, without writing anything.

The source's connector reads pages from the source's stored cursor (none for a new source:
its first poll's look-back) for at most MAX_PAGES pages or the time budget, whichever comes
first. Nothing is written: no post, cursor, lease, parked item or poll record. The report
counts what was read and shows the first few post ids; a platform error (refused
credentials, an unknown account) is reported, not raised. Export replays are not dry-run:
reading an export means reading the whole file, which is the poll's job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from replyclock.connectors.base import Connector
from replyclock.connectors.http import ConnectorError, Deadline, DeadlineExceeded, Throttled
from replyclock.dal.credentials import CredentialsError
from replyclock.models.sources import Source, SourceKind
from replyclock.observability import logger
from replyclock.redaction import redact
from replyclock.services.ingesting import Clock, build_connector, utc_now

MAX_PAGES = 5
BUDGET_SECONDS = 10.0
FIRST_IDS = 5

DryRunStatus = Literal["completed", "more", "throttled", "failed", "skipped"]


@dataclass
class DryRunResult:
    # completed: read everything new; more: stopped at the page or time cap with more to read.
    status: DryRunStatus = "completed"
    pages: int = 0
    would_store: int = 0
    rejected: int = 0
    ignored: int = 0
    deleted: int = 0
    first_post_ids: list[str] = field(default_factory=list)
    newest_post_at: datetime | None = None
    from_stored_cursor: bool = False
    message: str | None = None


def dry_run(
    source: Source,
    cursor: dict[str, Any],
    *,
    now: Clock = utc_now,
    budget_seconds: float = BUDGET_SECONDS,
    max_pages: int = MAX_PAGES,
    build: Callable[..., Connector] = build_connector,
) -> DryRunResult:
    result = DryRunResult(from_stored_cursor=bool(cursor))
    if source.kind is SourceKind.REPLAY:
        result.status = "skipped"
        result.message = "export replays are not dry-run: the first poll reads the whole file"
        return result
    ends = time.monotonic() + budget_seconds
    deadline = Deadline(lambda: int((ends - time.monotonic()) * 1000))
    pages = None
    try:
        pages = build(source, deadline=deadline, now=now).pages(cursor)
        while True:
            if result.pages >= max_pages or deadline.expired:
                result.status = "more"
                break
            try:
                page = next(pages)
            except StopIteration:
                break
            result.pages += 1
            result.would_store += len(page.posts)
            result.rejected += len(page.rejected)
            result.ignored += page.ignored
            result.deleted += len(page.deleted)
            room = FIRST_IDS - len(result.first_post_ids)
            result.first_post_ids += [post.id for post in page.posts[:room]]
            newest = max((post.created_at for post in page.posts), default=None)
            if newest and (result.newest_post_at is None or newest > result.newest_post_at):
                result.newest_post_at = newest
    except Throttled as throttled:
        result.status = "throttled"
        result.message = f"the network asked us to wait {throttled.retry_after or 0:g} s"
    except DeadlineExceeded:
        result.status = "more"
    except (ConnectorError, CredentialsError, KeyError, ValidationError) as error:
        result.status = "failed"
        result.message = redact(str(error.args[0]) if isinstance(error, KeyError) else str(error))[:500]
        logger.info("dry run failed", source_id=source.id, error=result.message)
    finally:
        if pages is not None:
            pages.close()
    return result
