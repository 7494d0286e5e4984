"""Public holidays by country and region: the one place the ``holidays`` package is read.

The contract checks a country and region against what the package knows; the SLA
clocks ask for the holidays of one (a set-like of local dates, computed per year as
it is asked for).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from functools import cache

import holidays
from holidays.registry import EntityLoader


@cache
def _country_codes() -> frozenset[str]:
    # The codes of the package's registry, as list_supported_countries() gives them: that
    # function also imports every country's module for its regions (250 modules, about
    # 70 ms), where a contract needs one country's.
    return frozenset(EntityLoader.get_country_codes())


def check_country_and_region(country: str | None, region: str | None) -> None:
    """Given a contract's country (ISO 3166-1 alpha-2) and region, return if the package
    knows both. Raise ValueError naming what is unknown (a region needs its country)."""
    if country is not None and country not in _country_codes():
        raise ValueError(f"no public holidays are known for country {country!r}")
    if region is not None:
        if country is None:
            raise ValueError("a region needs its country")
        regions = list(getattr(holidays, country).subdivisions)
        if region not in regions:
            raise ValueError(
                f"{country} has no region {region!r}; known: {', '.join(regions) or 'none'}"
            )


def closed_days(country: str | None, region: str | None, closures: list[date]) -> Collection[date]:
    """Given a country and region (None: no public holidays) and extra closure dates,
    return the days on which a business there is closed (``day in result``)."""
    if country is None:
        return set(closures)
    days = holidays.country_holidays(country, subdiv=region)
    days.update(list(closures))
    return days
