"""ppsize.race: an exhaustive interleaving explorer for the page-cache paths that a
per-process page size (a per-mapping min folio order that changes at run time) has to get right.

>>> from ppsize.race import explore, Scenario
>>> r = explore(Scenario(policy="range"))
>>> r.verdict
'livelock'
"""
from __future__ import annotations

from .checker import Finding, Result, Step, explore as explore_system
from .model import (BAILOUTS, BUMPS, DEFAULT_BAILOUT, DROPS, KINDS, PATHS, POLICIES, RMWS,
                    WRITE_LOCKS, PageCacheSystem, Scenario)

__all__ = ["explore", "explore_system", "Scenario", "PageCacheSystem", "Result", "Finding",
           "Step", "POLICIES", "PATHS", "DROPS", "BAILOUTS", "BUMPS", "RMWS", "WRITE_LOCKS", "KINDS",
           "DEFAULT_BAILOUT"]


def explore(scenario=None, *, max_states=None, max_steps=None, por=True, **kwargs):
    """Explore every interleaving of a page-cache scenario.

    ``scenario`` is a :class:`Scenario`, or pass its fields as keyword arguments
    (``policy=``, ``unlocked=``, ``drop=``, ``bailout=``, ``actors=``...). Returns a
    :class:`Result` (``verdict``, ``states``, ``trace``, ``findings``, ``bounded``).
    ``por=False`` explores without partial-order reduction (same verdict, findings and
    traces; more states)."""
    if scenario is None:
        scenario = Scenario(**kwargs)
    elif kwargs:
        raise TypeError("pass either a Scenario or its fields, not both")
    return explore_system(PageCacheSystem(scenario), max_states=max_states, max_steps=max_steps,
                          por=por)
