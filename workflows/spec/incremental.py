"""The IncrementalLearningJob spec: new data at an edge retrains the served model, promoted only if better.

Shaped like Sedna's ``IncrementalLearningJob`` (a base model, a dataset per edge, trigger conditions, a
deploy-if-better rule), on edgefed's terms::

    apiVersion: edgefed.io/v1alpha1
    kind: IncrementalLearningJob
    metadata: {name: heart-incremental}
    spec:
      task: heart-demo                 # the FederatedTask whose served model is retrained
      checkSchedule: "*/30 * * * *"    # how often the CronWorkflow checks the data triggers
      triggers:
        newRows: {minRows: 20}         # an edge holds >= 20 rows more than at its last contribution
        accuracyBelow: {threshold: 0.7, minRows: 10}  # the served model on an edge's fresh rows
        schedule: "0 3 * * 0"          # and, whatever the data, retrain on this schedule
      retraining: {rounds: 5}
      promotion: {minImprovement: 0.01} # candidate accuracy >= served + 0.01 on the held-out set
      hardExamples: {fold: true}       # labelled hard examples the edge's inference service kept: new rows

At least one trigger. Schedules are checked as Argo checks a CronWorkflow's (robfig/cron's standard parser).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from edgefed.steps import documents
from edgefed.workflows.errors import SpecError
from edgefed.workflows.spec.base import SpecModel
from edgefed.workflows.spec.task import Metadata

__all__ = [
    "INCREMENTAL_KIND",
    "AccuracyTrigger",
    "HardExamplesSpec",
    "IncrementalLearningJob",
    "IncrementalSpec",
    "NewRowsTrigger",
    "PromotionSpec",
    "RetrainingSpec",
    "TriggersSpec",
    "load_job",
    "parse_job",
]

INCREMENTAL_KIND = "IncrementalLearningJob"

# Five fields or a descriptor: the shape Argo's cron parser takes (tests/conformance/cron.py checks it fully).
_CRON = re.compile(r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every \S+|(\S+\s+){4}\S+)$")


def _cron(value: str) -> str:
    if not _CRON.match(value.strip()):
        raise ValueError(f"{value!r} is not a cron schedule (five fields, e.g. '*/30 * * * *', or '@daily')")
    return value.strip()


class NewRowsTrigger(SpecModel):
    min_rows: int = Field(
        alias="minRows", gt=0, description="new rows at one edge since its last contribution"
    )


class AccuracyTrigger(SpecModel):
    threshold: float = Field(
        gt=0, le=1, description="retrain when the served model's accuracy on an edge's fresh rows is below it"
    )
    min_rows: int = Field(
        default=10, alias="minRows", gt=0, description="fresh rows an edge needs before it is scored"
    )


class TriggersSpec(SpecModel):
    new_rows: NewRowsTrigger | None = Field(default=None, alias="newRows")
    accuracy_below: AccuracyTrigger | None = Field(default=None, alias="accuracyBelow")
    schedule: str | None = Field(default=None, description="retrain on this cron schedule whatever the data")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return None if value is None else _cron(value)

    @model_validator(mode="after")
    def _some(self) -> TriggersSpec:
        if self.new_rows is None and self.accuracy_below is None and self.schedule is None:
            raise ValueError("set at least one trigger: newRows, accuracyBelow or schedule")
        return self


class RetrainingSpec(SpecModel):
    rounds: int = Field(default=5, gt=0, le=500, description="federated rounds of one retraining")


class PromotionSpec(SpecModel):
    min_improvement: float = Field(
        default=0.0,
        alias="minImprovement",
        ge=0,
        le=1,
        description="promote the candidate only if its held-out accuracy beats the served model's by at least this",
    )


class HardExamplesSpec(SpecModel):
    fold: bool = Field(
        default=False,
        description="append the labelled hard examples each edge's inference service kept to its dataset "
        "(a new version of the dataset object) before it is probed: they count as new rows and are learned from",
    )


class IncrementalSpec(SpecModel):
    task: str = Field(description="the FederatedTask (metadata.name) whose served model is retrained")
    check_schedule: str = Field(default="*/30 * * * *", alias="checkSchedule")
    triggers: TriggersSpec
    retraining: RetrainingSpec = Field(default_factory=RetrainingSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    hard_examples: HardExamplesSpec = Field(default_factory=HardExamplesSpec, alias="hardExamples")

    @field_validator("check_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        return _cron(value)


class IncrementalLearningJob(SpecModel):
    api_version: Literal["edgefed.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["IncrementalLearningJob"]
    metadata: Metadata
    spec: IncrementalSpec

    @property
    def name(self) -> str:
        return self.metadata.name

    def decision_config(self) -> dict[str, Any]:
        """What the check's steps need of the job (JSON data): triggers, rounds, promotion rule."""
        return {
            "job": self.name,
            "triggers": self.spec.triggers.model_dump(mode="json", by_alias=True),
            "retraining": self.spec.retraining.model_dump(mode="json", by_alias=True),
            "promotion": self.spec.promotion.model_dump(mode="json", by_alias=True),
            "hardExamples": self.spec.hard_examples.model_dump(mode="json", by_alias=True),
        }


def parse_job(document: Mapping[str, Any], *, source: str = "<job>") -> IncrementalLearningJob:
    """Validate an IncrementalLearningJob document; raise :class:`SpecError` listing every problem."""
    if not isinstance(document, Mapping):
        raise SpecError(
            source,
            [f"(document): expected a mapping, found {type(document).__name__}"],
            kind=INCREMENTAL_KIND,
        )
    try:
        return IncrementalLearningJob.model_validate(dict(document))
    except ValidationError as err:
        raise SpecError(source, documents.problems(err), kind=INCREMENTAL_KIND) from None


def load_job(path: str | Path) -> IncrementalLearningJob:
    """Read and validate an IncrementalLearningJob YAML file."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as err:
        raise SpecError(
            str(path), [f"(file): cannot be read: {err.strerror}"], kind=INCREMENTAL_KIND
        ) from None
    except yaml.YAMLError as err:
        raise SpecError(str(path), [f"(file): not valid YAML: {err}"], kind=INCREMENTAL_KIND) from None
    return parse_job(document, source=str(path))
