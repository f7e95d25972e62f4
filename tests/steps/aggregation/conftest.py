"""Fixtures of the aggregation tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tff():
    import tensorflow_federated

    return tensorflow_federated
