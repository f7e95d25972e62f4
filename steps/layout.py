"""Where things live in the stores: bucket names, object keys and who may touch them.

One module so that the data plane (steps) and the embedded store's identity policies (workflows)
agree on a single layout. Pure constants and string functions: no I/O, no third-party imports.

Buckets:
- ``edge-<edge>``: one per edge, that edge's dataset (in production: the edge's own MinIO), and what
  stays at the edge: full contract-check results and their cache under ``edgefed/validation/``, and under
  ``edgefed/autonomy/`` the last global model it received and the updates it trained offline (its outbox).
- ``edgefed-updates``: model updates; edge ``E`` may write only under ``E/``.
- ``edgefed-models``: versioned global models, manifests and lineage; written by the cloud identity.
- ``edgefed-eval``: held-out test sets for central evaluation; read by the cloud identity.
- ``edgefed-secagg``: the messages of a secure-aggregation round (:mod:`edgefed.steps.secagg`), all of
  them safe for every participant to read: public keys, encrypted shares, masked inputs, unmasking
  answers. Edge ``E`` writes only under ``E/``, the cloud only under ``_server/``; both read and list.
"""

from __future__ import annotations

UPDATES_BUCKET = "edgefed-updates"
MODELS_BUCKET = "edgefed-models"
EVAL_BUCKET = "edgefed-eval"
SECAGG_BUCKET = "edgefed-secagg"
EDGE_BUCKET_PREFIX = "edge-"
#: The cloud's prefix in :data:`SECAGG_BUCKET` (no edge name starts with ``_``: names are DNS labels).
SECAGG_SERVER_PREFIX = "_server/"

#: Default retention of every object version in ``edgefed-models`` (S3 Object Lock, GOVERNANCE mode):
#: no identity the steps hold can delete a committed model, manifest or server state before it ends;
#: only an administrator who explicitly bypasses governance can. Ten years: clinical records keep as long.
MODEL_RETENTION_DAYS = 3650

#: Region set on every client: SeaweedFS refuses a restricted identity's GetBucketLocation without it.
REGION = "us-east-1"

ADMIN_IDENTITY = "admin"
CLOUD_IDENTITY = "cloud"


def edge_bucket(edge: str) -> str:
    """Bucket holding ``edge``'s dataset."""
    return f"{EDGE_BUCKET_PREFIX}{edge}"


def edge_identity(edge: str) -> str:
    """Name of ``edge``'s identity in the **cloud** store (and its Kubernetes Secret's suffix): it writes
    the edge's updates and verdicts, reads models."""
    return f"edge-{edge}"


def site_identity(edge: str) -> str:
    """Name of ``edge``'s identity in its **own site's** store: it reads (and caches verdicts beside)
    the edge's dataset; the cloud store does not know it."""
    return f"site-{edge}"


def notify_identity(edge: str) -> str:
    """The identity that may only listen to ``edge``'s bucket notifications (Argo Events), in its own store."""
    return f"notify-{edge}"


def update_prefix(edge: str) -> str:
    """Prefix in :data:`UPDATES_BUCKET` under which only ``edge`` may write."""
    return f"{edge}/"


def update_round_prefix(edge: str, task: str, round_: int) -> str:
    """Prefix of ``edge``'s objects for ``round_`` of ``task`` in :data:`UPDATES_BUCKET`."""
    return f"{update_prefix(edge)}{task}/round-{round_:05d}/"


def update_key(edge: str, task: str, round_: int, workflow: str) -> str:
    """``edge``'s update for ``round_``, written by the run of workflow ``workflow``.

    Keyed by workflow so that a re-run of an interrupted round never mixes in an update left by the
    earlier attempt.
    """
    return f"{update_round_prefix(edge, task, round_)}{workflow}/update.npz"


def edge_status_key(edge: str, task: str, round_: int, workflow: str) -> str:
    """Why ``edge`` sent no update (written by the edge's step when it gives up)."""
    return f"{update_round_prefix(edge, task, round_)}{workflow}/status.json"


def verdict_key(edge: str, task: str, round_: int, workflow: str) -> str:
    """The contract verdict of ``edge`` for a round: all of the check that leaves the edge."""
    return f"{update_round_prefix(edge, task, round_)}{workflow}/verdict.json"


def late_update_key(edge: str, task: str, round_: int, workflow: str, trained_round: int) -> str:
    """An update ``edge`` trained in round ``trained_round`` while it could not reach the cloud, delivered in
    ``round_`` beside its update of that round (which names it: the aggregate reads no other)."""
    return f"{update_round_prefix(edge, task, round_)}{workflow}/late-{trained_round:05d}.npz"


def autonomy_prefix(task: str) -> str:
    """Prefix, in the edge's OWN bucket, of what lets it train without the cloud: ``parent.npz`` (the last
    global model it received) and ``outbox/`` (updates it trained offline, until the cloud has them)."""
    return f"edgefed/autonomy/{task}/"


def site_parent_key(task: str) -> str:
    """The edge's copy of the last global model of ``task`` it received (its round and SHA-256 in metadata)."""
    return f"{autonomy_prefix(task)}parent.npz"


def outbox_prefix(task: str) -> str:
    """The edge's outbox for ``task``: ``round-NNNNN.npz`` (an update trained offline), ``.verdict.json`` (its
    contract verdict), ``.delivery.json`` (when it was sent), ``.done.json`` (what became of it)."""
    return f"{autonomy_prefix(task)}outbox/"


def outbox_key(task: str, trained_round: int, kind: str = "npz") -> str:
    """One record of the outbox entry of ``trained_round`` (``kind``: npz, verdict, delivery or done)."""
    suffix = "npz" if kind == "npz" else f"{kind}.json"
    return f"{outbox_prefix(task)}round-{trained_round:05d}.{suffix}"


def validation_prefix(task: str, round_: int, workflow: str) -> str:
    """Prefix, in the edge's OWN bucket, of a round's full check result (``result.json``) and its
    Data Docs page (``result.html``): they name offending values, so they stay at the edge."""
    return f"edgefed/validation/{task}/round-{round_:05d}/{workflow}/"


def validation_result_key(task: str, round_: int, workflow: str, *, page: bool = False) -> str:
    """The full check result of a round (``result.json``), or its Data Docs page (``result.html``),
    under :func:`validation_prefix` in the edge's own bucket."""
    return f"{validation_prefix(task, round_, workflow)}result.{'html' if page else 'json'}"


def validation_cache_key(contract_sha256: str, etag: str) -> str:
    """Where a passing verdict for this dataset object (by ETag) and contract is kept, in the edge's
    own bucket, so unchanged data is not checked again."""
    return f"edgefed/validation/cache/{contract_sha256[:16]}-{etag.strip(chr(34))}.json"


def train_set_key(dataset: str, suffix: str = ".parquet") -> str:
    """Default key of an edge's training data in its bucket (the task may name another); ``suffix``: the
    format's (``.parquet``, ``.feather``)."""
    return f"{dataset}/train{suffix}"


def rounds_prefix(task: str) -> str:
    """Prefix of every committed round of ``task`` in :data:`MODELS_BUCKET`."""
    return f"{task}/rounds/"


def round_prefix(task: str, round_: int) -> str:
    """Prefix of round ``round_``'s committed objects in :data:`MODELS_BUCKET`."""
    return f"{rounds_prefix(task)}{round_:05d}/"


def model_key(task: str, round_: int) -> str:
    """Immutable per-round global model object."""
    return f"{round_prefix(task, round_)}model.npz"


def manifest_key(task: str, round_: int) -> str:
    """Lineage manifest of a round: the commit record, written after the model."""
    return f"{round_prefix(task, round_)}manifest.json"


def server_state_key(task: str, round_: int) -> str:
    """The aggregation strategy's state after round ``round_`` (beside the round's model)."""
    return f"{round_prefix(task, round_)}server-state.npz"


def evaluation_key(task: str, round_: int) -> str:
    """Central evaluation of round ``round_``'s model."""
    return f"{round_prefix(task, round_)}evaluation.json"


def events_prefix(task: str) -> str:
    """The task's TensorBoard event files (``tensorboard --logdir s3://edgefed-models/<task>/tensorboard``)."""
    return f"{task}/tensorboard/"


def events_key(task: str, round_: int, writer: str) -> str:
    """One event file per round and writing step (``aggregate``, ``evaluate``): TensorBoard reads every
    file with ``tfevents`` in its name, so each round's scalars are an object of their own."""
    return f"{events_prefix(task)}events.out.tfevents.{round_:05d}.{writer}"


def plan_state_key(task: str, round_: int) -> str:
    """The stop conditions' state after round ``round_`` (derived from the evaluations; the plan step
    keeps it so it reads two objects per round, not every evaluation so far)."""
    return f"{round_prefix(task, round_)}plan-state.json"


def attempts_prefix(task: str, round_: int) -> str:
    """Where the plan step records each Workflow it names for round ``round_``, one object per attempt."""
    return f"{round_prefix(task, round_)}attempts/"


def attempt_key(task: str, round_: int, attempt: int) -> str:
    return f"{attempts_prefix(task, round_)}{attempt:04d}.json"


def promotions_prefix(task: str) -> str:
    """Prefix of the task's promotion records in :data:`MODELS_BUCKET` (which version serves)."""
    return f"{task}/promotions/"


def promotion_key(task: str, seq: int) -> str:
    """The ``seq``-th promotion record of ``task`` (1, 2, ...): written once, never replaced."""
    return f"{promotions_prefix(task)}{seq:06d}.json"


def secagg_edge_key(edge: str, task: str, round_: int, workflow: str, name: str) -> str:
    """In :data:`SECAGG_BUCKET`: what ``edge`` sends in a secure round (``keys.json``, ``shares.json``,
    ``masked.npz``, ``unmask.json``), under the prefix only it may write."""
    return f"{update_prefix(edge)}{task}/round-{round_:05d}/{workflow}/{name}"


def secagg_server_key(task: str, round_: int, workflow: str, name: str) -> str:
    """In :data:`SECAGG_BUCKET`: what the cloud publishes in a secure round (``roster.json``,
    ``sharers.json``, ``survivors.json``, ``inbox/<edge>.json``)."""
    return f"{SECAGG_SERVER_PREFIX}{task}/round-{round_:05d}/{workflow}/{name}"


def secagg_secrets_key(task: str, round_: int, workflow: str) -> str:
    """In an edge's OWN bucket: its private keys and self-mask seed for one secure round (never leave it)."""
    return f"edgefed/secagg/{task}/round-{round_:05d}/{workflow}/secrets.json"


def deployed_model_key(task: str, round_: int) -> str:
    """In an edge's OWN bucket: the model of ``round_`` of ``task`` deployed there (the ``.npz`` as committed)."""
    return f"models/{task}/{round_:05d}/model.npz"


def deployed_manifest_key(task: str, round_: int) -> str:
    """In an edge's own bucket: the committed manifest of the deployed model (its lineage travels with it)."""
    return f"models/{task}/{round_:05d}/manifest.json"


def deployed_current_key(task: str) -> str:
    """In an edge's own bucket: which version of ``task`` the edge runs (a new object version per deployment)."""
    return f"models/{task}/current.json"


def deployment_receipt_key(edge: str, task: str, workflow: str) -> str:
    """Under the edge's prefix of :data:`UPDATES_BUCKET`: what the edge's deploy step did (for the cloud's record)."""
    return f"{update_prefix(edge)}{task}/deployments/{workflow}.json"


def hard_examples_prefix(task: str) -> str:
    """In an edge's OWN bucket: the hard examples its inference service kept (new data for incremental learning)."""
    return f"hard-examples/{task}/"


def hard_examples_key(task: str, day: str, name: str) -> str:
    """One batch of hard examples (Parquet: features, label if given, the edge's and the cloud's answers)."""
    return f"{hard_examples_prefix(task)}{day}/{name}.parquet"


def hard_example_labels_key(task: str, name: str) -> str:
    """Labels given later for kept hard examples (JSON: ``[{"example": "<batch>:<row>", "label": n}]``)."""
    return f"{hard_examples_prefix(task)}labels/{name}.json"


def hard_examples_ledger_key(task: str) -> str:
    """Which kept hard examples were folded into the edge's dataset (so none is learned twice)."""
    return f"{hard_examples_prefix(task)}folded.json"


def deployments_prefix(task: str) -> str:
    """Prefix of the task's deployment records in :data:`MODELS_BUCKET`: which version each edge runs."""
    return f"{task}/deployments/"


def deployment_key(task: str, workflow: str) -> str:
    """The record of deployment Workflow ``workflow``: the version, and each edge's outcome."""
    return f"{deployments_prefix(task)}{workflow}.json"


def probe_key(edge: str, task: str, workflow: str) -> str:
    """Under the edge's prefix of :data:`UPDATES_BUCKET`: an incremental check's probe (counts, one accuracy)."""
    return f"{update_prefix(edge)}{task}/probes/{workflow}.json"


def incremental_key(task: str, workflow: str) -> str:
    """In :data:`MODELS_BUCKET`: an incremental check's decision (fired or not, why) and its outcome."""
    return f"{task}/incremental/{workflow}.json"


def latest_key(task: str) -> str:
    """The task's ``latest`` object: one new version per committed round."""
    return f"{task}/latest.npz"


def test_set_key(dataset: str) -> str:
    """Held-out test set of ``dataset`` in :data:`EVAL_BUCKET`."""
    return f"{dataset}/test.parquet"


__all__ = [
    "ADMIN_IDENTITY",
    "CLOUD_IDENTITY",
    "EDGE_BUCKET_PREFIX",
    "EVAL_BUCKET",
    "MODELS_BUCKET",
    "REGION",
    "SECAGG_BUCKET",
    "SECAGG_SERVER_PREFIX",
    "UPDATES_BUCKET",
    "attempt_key",
    "attempts_prefix",
    "autonomy_prefix",
    "deployed_current_key",
    "deployed_manifest_key",
    "deployed_model_key",
    "deployment_key",
    "deployment_receipt_key",
    "deployments_prefix",
    "edge_bucket",
    "edge_identity",
    "edge_status_key",
    "evaluation_key",
    "hard_example_labels_key",
    "hard_examples_key",
    "hard_examples_ledger_key",
    "hard_examples_prefix",
    "incremental_key",
    "late_update_key",
    "latest_key",
    "manifest_key",
    "model_key",
    "notify_identity",
    "outbox_key",
    "outbox_prefix",
    "plan_state_key",
    "probe_key",
    "promotion_key",
    "promotions_prefix",
    "round_prefix",
    "rounds_prefix",
    "secagg_edge_key",
    "secagg_secrets_key",
    "secagg_server_key",
    "server_state_key",
    "site_identity",
    "site_parent_key",
    "test_set_key",
    "train_set_key",
    "update_key",
    "update_prefix",
    "update_round_prefix",
    "validation_cache_key",
    "validation_prefix",
    "validation_result_key",
    "verdict_key",
]
