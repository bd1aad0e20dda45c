"""A few rounds of the SIGKILL stress (scripts/stress_crash.py runs 100+ before a release)."""

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "stress_crash", Path(__file__).resolve().parents[2] / "scripts" / "stress_crash.py"
)
stress_crash = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stress_crash)


@pytest.mark.slow
def test_killing_writers_at_random_moments_loses_and_tears_nothing():
    results = stress_crash.run(trials=10, seed=11)
    assert results["problems"] == []
    assert results["kills"] == 10 and all(n == 2 for n in results["by_operation"].values())
    # every kill's landing phase was recorded (which phases 10 random kills hit varies from run to run)
    assert sum(results["kills_by_phase"].values()) == 10
    assert all(sum(by_phase.values()) == 2 for by_phase in results["kills_by_operation_and_phase"].values())
