"""The joint inference service (Sedna's): a small model at the edge, a bigger one in the cloud, over HTTP/JSON.

Both sides answer ``POST /v1/predict`` with a batch::

    {"instances": [{"age": 0.63, "sex_male": 1.0, ...}, [0.63, 1.0, ...]], "labels": [1, null]}

(each instance by feature column, or as a list in the dataset's column order; ``labels`` optional) and
``GET /healthz`` (the process is up), ``GET /readyz`` (a model is loaded: 200, else 503). Every answer names the
model version that gave it.

At the edge, an example is *hard* when the edge model's confidence is below ``threshold`` (rule ``confidence``)
or the top two probabilities are closer than it (rule ``margin``). Hard examples of a batch go to the cloud in
one request and are answered with the cloud's prediction; each is stored in the edge's **own** store (features,
and the label when the request gave one) under ``hard-examples/<task>/``, and its answer carries an ``example``
id; ``POST /v1/label`` with ``{"labels": [{"example": id, "label": n}]}`` gives a label later. The incremental
learning job folds the labelled ones into the edge's dataset as new data (:mod:`edgefed.steps.hard_examples`). When the cloud cannot be reached, the edge answers with its own prediction, marks it
(``cloudUnreachable``) and keeps serving: edge autonomy. A malformed request is refused with 400 naming the
field, before anything is predicted or stored.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import urllib3
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from minio import Minio
from pydantic import BaseModel, ConfigDict, Field

from edgefed.steps import hard_examples, layout
from edgefed.steps.serving.model import ServedModel
from edgefed.steps.store import StepError, exists, parquet_bytes, put_bytes, put_json, utc_now

__all__ = ["MAX_BATCH", "EdgeSettings", "PredictRequest", "cloud_app", "edge_app"]

#: The most instances one request may carry.
MAX_BATCH = 4096
RULES = ("confidence", "margin")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instances: list[dict[str, float] | list[float]] = Field(min_length=1, max_length=MAX_BATCH)
    labels: list[int | None] | None = None


class LabelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    example: str
    label: int


class LabelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[LabelEntry] = Field(min_length=1, max_length=MAX_BATCH)


@dataclass
class EdgeSettings:
    edge: str
    cloud_url: str | None  # None: edge only (every answer is the edge's)
    rule: str = "confidence"
    threshold: float = 0.8
    site: Minio | None = None  # the edge's own store (site identity): where hard examples go
    cloud_timeout: float = 5.0
    stored: list[str] = field(default_factory=list)  # keys written (for the operator's log and the tests)


class _BadRequest(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message


def _matrix(body: PredictRequest, model: ServedModel) -> np.ndarray:
    """The batch as ``[n, features]``, or :class:`_BadRequest` naming the first bad instance field."""
    n = len(model.feature_columns)
    rows = np.empty((len(body.instances), n), np.float32)
    columns = model.feature_columns
    for i, instance in enumerate(body.instances):
        if isinstance(instance, dict):
            missing = [c for c in columns if c not in instance]
            unknown = [c for c in instance if c not in set(columns)]
            if missing:
                raise _BadRequest(f"instances[{i}].{missing[0]}", f"missing feature ({len(missing)} missing)")
            if unknown:
                raise _BadRequest(f"instances[{i}].{unknown[0]}", "not a feature of the model")
            rows[i] = [instance[c] for c in columns]
        else:
            if len(instance) != n:
                raise _BadRequest(f"instances[{i}]", f"expected {n} features, got {len(instance)}")
            rows[i] = instance
    if not np.isfinite(rows).all():
        bad = int(np.argwhere(~np.isfinite(rows))[0][0])
        raise _BadRequest(f"instances[{bad}]", "features must be finite numbers")
    if body.labels is not None and len(body.labels) != len(body.instances):
        raise _BadRequest(
            "labels", f"expected {len(body.instances)} labels (one per instance), got {len(body.labels)}"
        )
    return rows


def _refuse(field: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=400, content={"error": f"{field}: {message}", "field": field})


def _app(title: str, holder: dict[str, Any]) -> FastAPI:
    app = FastAPI(title=title)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        if first.get("type") == "json_invalid":
            return _refuse("body", "not valid JSON")
        return _refuse(where, str(first.get("msg")))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        model = holder.get("model")
        if model is None:
            return JSONResponse(status_code=503, content={"ready": False})
        return JSONResponse(content={"ready": True, "model": model.describe()})

    return app


def _answers(model: ServedModel, probabilities: np.ndarray, by: str) -> list[dict[str, Any]]:
    classes = probabilities.argmax(axis=1)
    return [
        {"class": int(c), "confidence": float(p[c]), "probabilities": [float(v) for v in p], "answeredBy": by}
        for c, p in zip(classes, probabilities, strict=True)
    ]


def cloud_app(model: ServedModel) -> FastAPI:
    """The cloud side: the bigger model answers whatever it is sent."""
    holder = {"model": model}
    app = _app(f"edgefed cloud inference: {model.task}", holder)

    @app.post("/v1/predict")
    def predict(body: PredictRequest) -> JSONResponse:
        try:
            x = _matrix(body, model)
        except _BadRequest as bad:
            return _refuse(bad.field, bad.message)
        return JSONResponse(
            content={
                "model": {**model.describe(), "side": "cloud"},
                "predictions": _answers(model, model.predict(x), "cloud"),
            }
        )

    return app


def _hard(probabilities: np.ndarray, rule: str, threshold: float) -> np.ndarray:
    if rule == "margin":
        top = np.sort(probabilities, axis=1)
        return (top[:, -1] - top[:, -2]) < threshold
    return probabilities.max(axis=1) < threshold


def edge_app(model: ServedModel, settings: EdgeSettings) -> FastAPI:
    """The edge side: answers what it is sure of, forwards the hard examples, keeps them at the edge."""
    if settings.rule not in RULES:
        raise ValueError(f"hard-example rule: expected one of {', '.join(RULES)}, got {settings.rule!r}")
    holder = {"model": model}
    app = _app(f"edgefed edge inference: {model.task} at {settings.edge}", holder)
    http = urllib3.PoolManager(
        maxsize=8,
        retries=False,
        timeout=urllib3.Timeout(connect=min(1.0, settings.cloud_timeout), read=settings.cloud_timeout),
    )
    lock = threading.Lock()

    def ask_cloud(rows: np.ndarray) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
        if settings.cloud_url is None:
            return None, None
        try:
            response = http.request(
                "POST",
                f"{settings.cloud_url.rstrip('/')}/v1/predict",
                body=json.dumps({"instances": rows.tolist()}),
                headers={"Content-Type": "application/json"},
            )
        except urllib3.exceptions.HTTPError:
            return None, None  # down, refused, timed out: the edge answers on its own
        if response.status != 200:
            return None, None
        answer = json.loads(response.data)
        return answer["predictions"], answer["model"]

    def store(
        batch: str,
        rows: np.ndarray,
        labels: list[int | None],
        edge_answers: list[dict],
        cloud_answers: list[dict] | None,
    ) -> None:
        """The hard examples, in the edge's own store (never the cloud's): features, label, both answers."""
        import pandas as pd

        if settings.site is None:
            return
        frame = pd.DataFrame(rows, columns=model.feature_columns)
        frame["label"] = pd.array(labels, dtype="Int64")
        frame["edge_class"] = [a["class"] for a in edge_answers]
        frame["edge_confidence"] = [a["confidence"] for a in edge_answers]
        frame["cloud_class"] = pd.array(
            [a["class"] for a in cloud_answers] if cloud_answers else [None] * len(rows), dtype="Int64"
        )
        frame["received_at"] = utc_now()
        key = hard_examples.batch_key(model.task, batch)
        put_bytes(settings.site, layout.edge_bucket(settings.edge), key, parquet_bytes(frame))
        with lock:
            settings.stored.append(key)

    @app.post("/v1/predict")
    def predict(body: PredictRequest, background: BackgroundTasks) -> JSONResponse:
        try:
            x = _matrix(body, model)
        except _BadRequest as bad:
            return _refuse(bad.field, bad.message)
        probabilities = model.predict(x)
        answers = _answers(model, probabilities, "edge")
        hard = np.flatnonzero(_hard(probabilities, settings.rule, settings.threshold))
        cloud_model = None
        if len(hard):
            cloud_answers, cloud_model = ask_cloud(x[hard])
            batch = f"{utc_now()[:10].replace('-', '')}/{uuid.uuid4().hex[:12]}"
            for n, i in enumerate(hard):
                answers[i]["hard"] = True
                if cloud_answers is None:
                    answers[i]["cloudUnreachable"] = settings.cloud_url is not None
                else:
                    answers[i] = {
                        **cloud_answers[n],
                        "hard": True,
                        "edge": {k: answers[i][k] for k in ("class", "confidence")},
                    }
                if settings.site is not None:
                    answers[i]["example"] = hard_examples.example_id(batch, n)
            labels = [(body.labels or [None] * len(x))[i] for i in hard]
            background.add_task(
                store,
                batch,
                x[hard],
                labels,
                [_answers(model, probabilities[hard], "edge")[n] for n in range(len(hard))],
                cloud_answers,
            )
        return JSONResponse(
            content={
                "model": {**model.describe(), "side": "edge", "edge": settings.edge},
                "cloudModel": cloud_model,
                "predictions": answers,
            }
        )

    @app.post("/v1/label")
    def label(body: LabelRequest) -> JSONResponse:
        """Labels for kept hard examples, given later: written beside them in the edge's own store."""
        if settings.site is None:
            return JSONResponse(status_code=503, content={"error": "this edge keeps no hard examples"})
        bucket = layout.edge_bucket(settings.edge)
        entries = []
        for i, entry in enumerate(body.labels):
            try:
                batch, row = hard_examples.parse_example_id(entry.example)
            except ValueError as err:
                return _refuse(f"labels[{i}].example", str(err))
            if not 0 <= entry.label < model.classes:
                return _refuse(
                    f"labels[{i}].label", f"expected a class 0..{model.classes - 1}, got {entry.label}"
                )
            try:
                known = exists(settings.site, bucket, hard_examples.batch_key(model.task, batch))
            except StepError as err:
                return JSONResponse(status_code=503, content={"error": str(err)})
            if not known:
                return JSONResponse(
                    status_code=404,
                    content={
                        "error": f"labels[{i}].example: no kept example {entry.example!r}",
                        "field": f"labels[{i}].example",
                    },
                )
            entries.append(
                {"example": hard_examples.example_id(batch, row), "label": entry.label, "at": utc_now()}
            )
        key = layout.hard_example_labels_key(model.task, uuid.uuid4().hex)
        try:
            put_json(settings.site, bucket, key, {"labels": entries})
        except StepError as err:
            return JSONResponse(status_code=503, content={"error": str(err)})
        return JSONResponse(content={"labelled": len(entries)})

    return app
