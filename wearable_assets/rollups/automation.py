"""When a rollup partition is recomputed without anyone asking: its upstream partition changed.

Measured on Dagster 1.13 (tests in wearable_assets_tests/rollups/test_automation.py):

* ``AutomationCondition.eager()`` only looks at the latest day and waits until *every* upstream
  partition exists, so a backfilled past day, or one participant who never syncs, would keep
  rollups from following. This condition has no time window: any participant-day whose
  upstream was re-materialised (a late sync pulled by the schedule's trailing window, a UI
  backfill of last year) is rolled up again, once.
* A rollup materialised in the *same* run as its upstream counts as handled and is not
  requested again.
* Gate: not while an upstream partition is still running, and not when an upstream blocking
  check failed for that partition (none is blocking today: implausible values are quarantined
  at load and ignored by the rollup SQL, so they no longer hold rollups back; the gate stays for
  any blocking check added later). ``all_deps_blocking_checks_passed`` is deliberately not used:
  checks in ranged runs record their result without a partition, so that condition would never
  let a ranged backfill's days through.
* No look-back window either: bounding the condition with ``in_latest_time_window(lookback_delta=
  30 days)`` did not make ticks cheaper (200 participants x 365 days: 4.1 s per tick after an
  upstream change without it, 5.0 s with it; Dagster expands every date x participant key either
  way, and idle ticks take 0.1 s), and it would stop backfilled past days from following.
"""

from __future__ import annotations

import dagster as dg


def follow_upstream() -> dg.AutomationCondition:
    blocking_check_failed = dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.any_checks_match(dg.AutomationCondition.check_failed(), blocking_only=True)
    )
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & ~blocking_check_failed
    ).with_label("follow_upstream")
