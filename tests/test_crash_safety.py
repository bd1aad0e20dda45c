"""A few rounds of the SIGKILL stress (scripts/stress_crash.py runs 100+ before a release)."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("stress_crash", Path(__file__).parent.parent / "scripts" / "stress_crash.py")
stress_crash = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stress_crash)


def test_killing_writers_at_random_moments_loses_and_tears_nothing():
    results = stress_crash.run(trials=10, seed=11)
    assert results["problems"] == []
    assert results["kills"] == 10 and all(n == 2 for n in results["by_operation"].values())
