"""Run the longest integration modules first.

`make integration` runs modules two at a time (pytest-xdist, --dist loadfile),
handing them out in collection order. The three modules below take most of
the suite's time (several full site.yml converges each); collected last, as
their names sort, one of them ran alone at the end while the other worker sat
idle. Collected first, they overlap with everything else. The order within a
module is kept (the sort is stable).
"""

from __future__ import annotations

import pytest

SLOW_FIRST = ("test_interrupted_run.py", "test_site_fresh_host.py", "test_portal_https_acme.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))
