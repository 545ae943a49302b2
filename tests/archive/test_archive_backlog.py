"""The archiver's pass (gateway/bootstrap.py: archive_backlog): a sweep of the whole tables only while
it finds rows missed below the mark, the rest of a backlog through the index range of the new rows."""

from __future__ import annotations

from datetime import datetime, timezone

from gateway.bootstrap import ARCHIVE_PAGE, archive_backlog

NOW = datetime(2026, 12, 3, tzinfo=timezone.utc)


class ScriptedArchive:
    """Answers each pass with the next count of rows archived; records whether it was a sweep."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.sweeps: list[bool] = []

    async def archive_pending(self, now: datetime, limit: int, *, sweep: bool) -> int:
        assert limit == ARCHIVE_PAGE
        self.sweeps.append(sweep)
        return self.counts.pop(0)


async def test_under_steady_traffic_a_sweep_is_one_pass_and_the_new_rows_go_by_the_index() -> None:
    archive = ScriptedArchive([120, 80, 95, 60, 0])  # each pass finds what arrived during the last
    await archive_backlog(archive, lambda: NOW, sweep=True)
    assert archive.sweeps == [True, False, False, False, False]


async def test_a_sweep_goes_on_while_it_finds_full_pages_of_missed_rows() -> None:
    archive = ScriptedArchive([ARCHIVE_PAGE, ARCHIVE_PAGE, 200, 40, 0])
    await archive_backlog(archive, lambda: NOW, sweep=True)
    assert archive.sweeps == [True, True, True, False, False]


async def test_a_pass_without_a_sweep_never_sweeps() -> None:
    archive = ScriptedArchive([ARCHIVE_PAGE, 30, 0])
    await archive_backlog(archive, lambda: NOW, sweep=False)
    assert archive.sweeps == [False, False, False]
