from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replyclock.connectors.twcs import (
    RejectedRow,
    TwcsRow,
    conversation_roots,
    posts_from_rows,
    read_rows,
    twitter_time,
)
from replyclock.models.domain import AuthorRole

HEADER = "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
SAMPLE = HEADER + (
    "1,sprintcare,False,Tue Oct 31 22:10:47 +0000 2017,@115712 I understand.,2,3\n"
    "2,115712,True,Tue Oct 31 22:11:45 +0000 2017,@sprintcare and how,,1\n"
    "3,115712,True,Tue Oct 31 22:08:27 +0000 2017,@sprintcare no one is responding,1,4\n"
    '5,115713,True,Tue Oct 31 22:00:00 +0000 2017,"@Ask_Spectrum hi, there",,\n'
)


def rows(text: str) -> list[TwcsRow]:
    return [row for row in read_rows(io.StringIO(text)) if isinstance(row, TwcsRow)]


def test_rows_become_posts_with_brand_and_customer_roles() -> None:
    posts = {post.id: post for post in posts_from_rows(rows(SAMPLE))}

    assert posts["1"].author_role is AuthorRole.BRAND and posts["1"].brand_id == "sprintcare"
    assert posts["2"].author_role is AuthorRole.CUSTOMER and posts["2"].brand_id is None
    assert posts["2"].created_at == datetime(2017, 10, 31, 22, 11, 45, tzinfo=UTC)
    assert posts["5"].mentions == ("ask_spectrum",)


def test_a_parent_missing_from_the_file_stands_as_the_root() -> None:
    roots = conversation_roots(rows(SAMPLE))

    # 2 -> 1 -> 3 -> 4, and 4 is not in the file
    assert roots == {"1": "4", "2": "4", "3": "4", "5": "5"}


def test_pandas_float_ids_are_read_as_integers() -> None:
    [row] = rows(HEADER + "9,1,True,Tue Oct 31 22:10:47 +0000 2017,hi,,8.0\n")
    assert row.in_response_to_tweet_id == "8"


def test_a_malformed_row_is_rejected_with_its_field_and_the_rest_kept() -> None:
    text = HEADER + "x1,1,True,Tue Oct 31 22:10:47 +0000 2017,hi,,\n" + SAMPLE.splitlines(keepends=True)[2]

    parsed = list(read_rows(io.StringIO(text)))

    assert isinstance(parsed[0], RejectedRow) and parsed[0].field == "tweet_id"
    assert isinstance(parsed[1], TwcsRow)


def test_a_file_without_the_twcs_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        list(read_rows(io.StringIO("a,b\n1,2\n")))


def test_reply_cycles_do_not_hang() -> None:
    text = HEADER + ("1,1,True,Tue Oct 31 22:10:47 +0000 2017,a,,2\n2,1,True,Tue Oct 31 22:10:48 +0000 2017,b,,1\n")
    roots = conversation_roots(rows(text))
    assert roots["1"] == roots["2"]


@given(
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
    st.integers(-14 * 60, 14 * 60),
)
def test_twitter_times_read_as_strptime_reads_them(moment: datetime, offset_minutes: int) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    text = moment.replace(microsecond=0, tzinfo=zone).strftime("%a %b %d %H:%M:%S %z %Y")

    assert twitter_time(text) == datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y")
