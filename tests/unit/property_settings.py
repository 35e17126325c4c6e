"""The hypothesis settings of the monitor's property tests (test_monitor_properties, test_status_truth).

``MCPKEEPER_PROPERTY_EXAMPLES`` sets how many schedules each explores (500 by default; CI
may ask for more). Derandomized, so a failure seen once is seen again on the next run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["EXAMPLES", "monitor_property"]

EXAMPLES = int(os.environ.get("MCPKEEPER_PROPERTY_EXAMPLES", "500"))

monitor_property = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
