"""UTCDateTime: every timestamp comes back aware and in UTC, whatever the driver handed over."""

from datetime import UTC, datetime, timedelta, timezone

from domains.common.base import UTCDateTime


def test_a_utc_timestamp_comes_back_as_it_is_and_others_in_utc() -> None:
    column = UTCDateTime()
    in_utc = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    elsewhere = datetime(2026, 12, 4, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    naive = in_utc.replace(tzinfo=None)  # SQLite keeps no zone: its values were stored in UTC

    assert column.process_result_value(in_utc, None) is in_utc
    converted = column.process_result_value(elsewhere, None)
    assert converted == in_utc
    assert converted is not None
    assert converted.tzinfo is UTC
    from_sqlite = column.process_result_value(naive, None)
    assert from_sqlite == in_utc
    assert from_sqlite is not None
    assert from_sqlite.tzinfo is UTC
    assert column.process_result_value(None, None) is None
