"""The FedAvg kernel and weights codec against independent calculations (np.average)."""

from __future__ import annotations

import numpy as np
import pytest

from edgefed.steps import codec
from edgefed.steps.aggregators import ShapeMismatchError, WeightedMean


def random_update(rng, shapes):
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


@pytest.mark.parametrize("n_updates", [1, 2, 7])
def test_weighted_mean_matches_numpy_average(n_updates):
    rng = np.random.default_rng(n_updates)
    shapes = [(5, 3), (3,), ()]  # includes a 0-d array
    updates = [random_update(rng, shapes) for _ in range(n_updates)]
    weights = rng.integers(1, 500, n_updates).astype(float)
    mean = WeightedMean()
    for update, w in zip(updates, weights, strict=True):
        mean.add([a.copy() for a in update], w)
    result = mean.result()
    for i in range(len(shapes)):
        expected = np.average(np.stack([u[i] for u in updates]), axis=0, weights=weights)
        np.testing.assert_allclose(result[i], expected, rtol=1e-5, atol=1e-6)
        assert result[i].dtype == np.float32


def test_zero_weight_update_does_not_count_and_all_zero_is_an_error():
    mean = WeightedMean()
    mean.add([np.ones(3, np.float32)], 0)
    with pytest.raises(ValueError, match="no update with a positive weight"):
        mean.result()
    mean.add([np.full(3, 4.0, np.float32)], 2)
    np.testing.assert_allclose(mean.result()[0], 4.0)


def test_shape_mismatch_is_rejected_with_the_array_named():
    mean = WeightedMean()
    mean.add([np.ones((2, 2), np.float32)], 1)
    with pytest.raises(ShapeMismatchError, match=r"array 0: shape \(3,\)"):
        mean.add([np.ones(3, np.float32)], 1)
    with pytest.raises(ShapeMismatchError, match="has 2 arrays"):
        mean.add([np.ones((2, 2), np.float32)] * 2, 1)


def test_non_float32_updates_are_accumulated_without_mutating_input():
    a = np.arange(4, dtype=np.float64)
    mean = WeightedMean()
    mean.add([a], 3)
    mean.add([np.zeros(4)], 1)
    np.testing.assert_allclose(mean.result()[0], a * 0.75)
    np.testing.assert_array_equal(a, np.arange(4))


def test_codec_round_trip_keeps_order_dtype_and_meta():
    weights = [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array(2.5, np.float64),
        np.zeros(11, np.float32),
    ]
    data = codec.encode(weights, {"examples": 7, "edge": "a"})
    decoded, meta = codec.decode(data)
    assert meta == {"examples": 7, "edge": "a"}
    for got, want in zip(decoded, weights, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert [w.shape for w in codec.iter_weights(data)] == [(2, 3), (), (11,)]
    assert codec.sha256(data) == codec.sha256(codec.encode(weights, {"edge": "a", "examples": 7}))


def test_codec_rejects_garbage_and_pickles():
    with pytest.raises(codec.CodecError):
        codec.decode(b"not a zip")
    import io

    buffer = io.BytesIO()
    np.savez(buffer, w0000=np.array([{"a": 1}], dtype=object))
    with pytest.raises(codec.CodecError):
        codec.decode(buffer.getvalue())


def test_decode_views_are_zero_copy_and_equal_to_decode():
    weights = [
        np.arange(5000, dtype=np.float32).reshape(50, 100),
        np.array(1.5, np.float32),
        np.ones(3, np.float64),
    ]
    data = codec.encode(weights, {"examples": 3})
    views, meta = codec.decode_views(data)
    assert meta == {"examples": 3}
    for view, want in zip(views, weights, strict=True):
        np.testing.assert_array_equal(view, want)
        assert view.shape == want.shape and view.dtype == want.dtype
    assert np.shares_memory(views[0], np.frombuffer(data, np.uint8))
    assert not views[0].flags.writeable


def test_weighted_mean_over_read_only_views_matches_numpy_average():
    rng = np.random.default_rng(0)
    updates = [
        [rng.standard_normal((64, 40)).astype(np.float32), rng.standard_normal(7).astype(np.float32)]
        for _ in range(4)
    ]
    counts = [10, 250, 3, 77]
    mean = WeightedMean()
    for update, n in zip(updates, counts, strict=True):
        mean.add(
            codec.decode_views(codec.encode(update))[0], n
        )  # the BLAS path (>1024 values) and the small one
    for i in range(2):
        expected = np.average(np.stack([u[i] for u in updates]), axis=0, weights=counts)
        np.testing.assert_allclose(mean.result()[i], expected, rtol=1e-5, atol=1e-6)
