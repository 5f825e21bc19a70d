"""Test-wide settings."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# CI machines are shared and slow at times: a per-example deadline would make property tests
# fail on timing, not on behaviour. Failing examples are printed so they can be replayed.
settings.register_profile(
    "pcapan", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("pcapan")
