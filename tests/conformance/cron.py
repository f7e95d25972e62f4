"""CronWorkflow schedules as Argo validates them: robfig/cron v3's ``ParseStandard``, and Go time zones.

Argo (``workflow/validate/validate.go`` ``CronWorkflow``) calls ``cron.ParseStandard`` on each schedule
and ``time.LoadLocation`` on ``timezone``. ParseStandard takes five fields (minute hour day-of-month
month day-of-week; names ``jan``-``dec`` and ``sun``-``sat``; ``*``, ``?``, ranges, lists, steps), a
descriptor (``@daily``..., ``@every <Go duration>``) and an optional ``CRON_TZ=``/``TZ=`` prefix.

Written here rather than taken from PyPI: croniter and cronsim accept what robfig/cron rejects
(``7`` for Sunday, ``L``/``W``/``#``, a sixth seconds field) and reject what it accepts (``@every``,
``CRON_TZ=``), so either would need as much code around it to match Argo as this parser is.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from functools import lru_cache

_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_EVERY = re.compile(r"@every\s+([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: (name, lowest, highest, names) of the five fields.
_FIELDS: tuple[tuple[str, int, int, Mapping[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 6, {d: i for i, d in enumerate(_DAYS)}),
)


def cron_schedule_problem(schedule: str) -> str | None:
    """Why robfig/cron's standard parser (5 fields or a descriptor, optional ``CRON_TZ=``) rejects it."""
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        tz, _, text = text.partition(" ")
        if not valid_timezone(tz.split("=", 1)[1]):
            return f"unknown time zone in {tz!r}"
        text = text.strip()
    if text.startswith("@"):
        if text in _DESCRIPTORS or _EVERY.fullmatch(text):
            return None
        return f"unknown descriptor {text!r}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}"
    for value, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for part in value.split(","):
            problem = _part_problem(part, low, high, names)
            if problem:
                return f"{name} {value!r}: {problem}"
    return None


def _part_problem(part: str, low: int, high: int, names: Mapping[str, int]) -> str | None:
    range_, _, step = part.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        return f"bad step {step!r}"
    if range_ in ("*", "?"):
        return None

    def number(text: str) -> int | None:
        if text.isdigit():
            return int(text)
        return names.get(text.lower())

    first, _, last = range_.partition("-")
    a, b = number(first), number(last) if last else None
    if a is None or (last and b is None):
        return f"{range_!r} is not a number or range"
    if not low <= a <= high or (b is not None and not low <= b <= high):
        return f"{range_!r} is outside {low}-{high}"
    if b is not None and b < a:
        return f"{range_!r} ends before it starts"
    return None


@lru_cache(maxsize=256)
def valid_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone (Go's ``time.LoadLocation``); ``True`` without a tz database."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return not zoneinfo.available_timezones()  # no tz database here: cannot tell, do not report
    return True


__all__ = ["cron_schedule_problem", "valid_timezone"]
