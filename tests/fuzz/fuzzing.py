"""The fuzz targets' hypothesis settings (applied per test, so the rest of the suite keeps its own).

``ARI_AGENT_FUZZ_EXAMPLES`` sets the cases per target (default 200: the whole fuzz suite in seconds
on 2 cores). The long run: ``ARI_AGENT_FUZZ_EXAMPLES=100000 .venv/bin/pytest -q -p no:cacheprovider
tests/fuzz``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("ARI_AGENT_FUZZ_EXAMPLES", "200"))
# No example database: a CI run must not depend on (or write) files left by an earlier run. The case
# counter (conftest.fuzz_cases) is a function-scoped fixture on purpose: it accumulates across cases.
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)
