"""`make demo`'s command end to end: it trains, lands within 3 points of centralized, and leaves nothing running."""

from __future__ import annotations

import re

import pytest

from edgefed.workflows.embedded.store import EmbeddedStore
from tests.helpers import edgefed


@pytest.mark.slow
def test_demo_trains_within_three_points_of_centralized_and_cleans_up(tmp_path):
    home = tmp_path / "home"
    result = edgefed("demo", home=home, timeout=600)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert (
        len(re.findall(r"^round +\d+ +accuracy 0\.\d+", out, flags=re.M)) >= 10
    )  # each round's central accuracy
    federated = float(re.search(r"federated accuracy .*: (0\.\d+)", out).group(1))
    centralized = float(re.search(r"centralized logistic regression .*: (0\.\d+)", out).group(1))
    assert abs(federated - centralized) <= 0.03, (federated, centralized)
    task = re.search(r"edgefed models list (heart-demo-[\d-]+)", out).group(1)
    assert not EmbeddedStore(home / "store").running  # the demo stops the store it started
    listed = edgefed("models", "list", task, "-o", "json", home=home, timeout=120)
    try:
        assert listed.returncode == 0 and f'"task": "{task}"' in listed.stdout
    finally:
        edgefed("store", "stop", home=home, timeout=120)
