"""Cron schedules as Kubernetes CronJobs take them: checked before anything is registered, and
their longest gap between runs (what "the backup is late" means for an alert).

Five fields (minute hour day-of-month month day-of-week) of numbers, `*`, ranges `a-b`, steps
`/n` and lists, or one of the macros @hourly, @daily (@midnight), @weekly, @monthly, @yearly
(@annually). Month and weekday names are not accepted: numbers read the same everywhere.
Day-of-month and day-of-week follow cron's rule: when both are restricted, either matching
fires the job.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# (name, lowest, highest); day-of-week 7 is Sunday as well as 0.
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
          ("day of week", 0, 7))  # fmt: skip


@dataclass(frozen=True)
class Schedule:
    """The sets of values each field matches."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_date or by_weekday
        return by_date and by_weekday


def _number(text: str, name: str, low: int, high: int) -> int:
    if not text.isdigit():
        raise ValueError(f"{name}: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is outside {low}-{high}")
    return value


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = _number(step_text, name, 1, high - low + 1) if step_text else 1
        if spec == "*":
            start, end = low, high
        elif "-" in spec:
            first, _, last = spec.partition("-")
            start, end = _number(first, name, low, high), _number(last, name, low, high)
            if start > end:
                raise ValueError(f"{name}: range {spec} runs backwards")
        else:
            start = _number(spec, name, low, high)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse(expression: str) -> Schedule:
    """A schedule, or ValueError saying which field is wrong and why."""
    text = MACROS.get(expression.strip(), expression.strip())
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"{expression!r} has {len(fields)} fields; a schedule has five (minute hour "
            "day-of-month month day-of-week) or is one of " + ", ".join(MACROS)
        )
    sets = [_field(f, *spec) for f, spec in zip(fields, FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Schedule(*sets[:4], weekdays, fields[2] != "*", fields[4] != "*")


def fire_times(expression: str, start: datetime, days: int) -> list[datetime]:
    """Every time the schedule fires in `days` days from `start`'s midnight."""
    schedule = parse(expression)
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    times = []
    for offset in range(days):
        day = midnight + timedelta(days=offset)
        if schedule.matches_day(day):
            times += [
                day.replace(hour=h, minute=m)
                for h in sorted(schedule.hours)
                for m in sorted(schedule.minutes)
            ]
    return times


def longest_gap(expression: str) -> timedelta:
    """The longest time between two runs over four years (every month length and weekday
    combination, a leap day included), or ValueError if it never runs in that time."""
    times = fire_times(expression, datetime(2024, 1, 1), 4 * 366)
    if len(times) < 2:
        raise ValueError(f"{expression!r} never fires twice in four years")
    return max(later - earlier for earlier, later in itertools.pairwise(times))
