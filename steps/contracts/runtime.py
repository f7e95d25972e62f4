"""Checking a DataFrame against a contract with Great Expectations, once per process.

One ephemeral context per process (``gx.get_context(mode="ephemeral")``, progress bars off), one
pandas data source with one dataframe asset and a whole-dataframe batch definition; one
``ExpectationSuite`` per contract, built once and cached by the contract's SHA-256;
GE's own ``Validator`` (what ``batch.validate(suite)`` runs) with ``result_format="SUMMARY"``, under a lock
(validations run one at a time).
Nothing is written to disk. GE is imported on first use (about 3-5 s), never at import of
:mod:`edgefed.steps.contracts`, and then kept: :func:`warm_up` pays it in a warm worker's initializer.

What stays at the edge: :func:`full_result_json` (GE's whole result) and :func:`data_docs_html` (its
Data Docs page) name offending values. What travels is the :class:`Verdict`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from edgefed.steps.contracts.errors import ContractError
from edgefed.steps.contracts.expansion import Contract, display_name
from edgefed.steps.contracts.verdict import FailedExpectation, Verdict, observed

__all__ = ["check", "data_docs_html", "full_result_json", "ge_runtime", "warm_up"]

_RESULT_FORMAT = "SUMMARY"

#: Per thread, while :func:`check` validates: an expectation's ``configuration`` by ``id`` (with the
#: expectation itself, so the id cannot be reused while the memo lives). None: not validating.
_VALIDATING = threading.local()
_MEMOIZE = True  # tests compare with GE's own behaviour (False)


def _memoize_configurations() -> None:
    """Make GE's ``Expectation.configuration`` compute once per expectation during one validation.

    Why by hand: GE 1.x's property rebuilds the configuration (a pydantic ``dict()`` of every field) on
    every read, and a validation reads it for every kwarg of every expectation, ~400 times a check;
    with column groups of 784 names (mnist) a 600-row check took 170 ms, 99 ms with the memo. During a validation the expectation
    objects GE builds from the suite are only read, so one configuration each is the same answer. Out of
    :func:`check` (or on another thread) the property behaves exactly as GE wrote it.
    """
    from great_expectations.expectations.expectation import Expectation

    original = Expectation.configuration
    if getattr(original.fget, "edgefed_memoized", False):
        return

    def configuration(self: Any) -> Any:
        memo = getattr(_VALIDATING, "memo", None)
        if memo is None:
            return original.fget(self)
        hit = memo.get(id(self))
        if hit is None:
            hit = memo[id(self)] = (self, original.fget(self))
        return hit[1]

    configuration.edgefed_memoized = True  # type: ignore[attr-defined]
    Expectation.configuration = property(configuration, doc=original.__doc__)

    # The way back, configuration -> expectation object, is as dear (a pydantic validation of every kwarg,
    # the 784 names of a column group each) and GE takes it ~4 times per expectation a validation (each
    # metric's kwargs, the dependencies, the validation itself), on configurations it no longer changes.
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    to_domain = ExpectationConfiguration.to_domain_obj

    def to_domain_obj(self: Any) -> Any:
        memo = getattr(_VALIDATING, "domain", None)
        if memo is None:
            return to_domain(self)
        hit = memo.get(id(self))
        if hit is None or hit[1] != self.kwargs:  # changed since (GE adds batch_id to its copies first)
            hit = memo[id(self)] = (self, _snapshot(self.kwargs), to_domain(self))
        return hit[2]

    ExpectationConfiguration.to_domain_obj = to_domain_obj


def _snapshot(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A copy of an expectation's kwargs to compare later ones with: its lists (a column group's 784 names)
    copied in C, not element by element as ``copy.deepcopy`` does; what they hold (names, numbers) is
    immutable."""
    return {k: list(v) if isinstance(v, list) else v for k, v in kwargs.items()}


class _Runtime:
    """GE imported once per process: an ephemeral context, a batch definition, suites per contract."""

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.validator.v1_validator import Validator

        from edgefed.steps.contracts import expectations  # noqa: F401 (registers edgefed's with GE)

        _memoize_configurations()
        # GE fingerprints each batch (an MD5 over pandas' hash of every value of every column) for its
        # result's batch markers only: 11 ms of a 34 ms check on 785 columns. The bytes checked are named
        # by their ETag (the verdict and the key of its cache carry it), so no fingerprint: GE skips it for
        # a frame of at least HASH_THRESHOLD bytes.
        from great_expectations.execution_engine import pandas_execution_engine

        pandas_execution_engine.HASH_THRESHOLD = 0
        self.gx = gx
        self.validator_class = Validator  # what Batch.validate and ValidationDefinition.run validate with
        self.version = str(gx.__version__)
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        asset = self.context.data_sources.add_pandas("edgefed").add_dataframe_asset("edge-dataset")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        self.suites: dict[str, Any] = {}
        self.lock = threading.Lock()

    def suite(self, contract: Contract) -> Any:
        suite = self.suites.get(contract.sha256)
        if suite is None:
            suite = self.gx.ExpectationSuite(name=contract.name, expectations=_build(contract))
            self.suites[contract.sha256] = suite
        return suite


_RUNTIME: _Runtime | None = None
_RUNTIME_LOCK = threading.Lock()


def ge_runtime() -> _Runtime:
    """The process's GE runtime, created on first use."""
    global _RUNTIME
    if _RUNTIME is None:
        with _RUNTIME_LOCK:
            if _RUNTIME is None:
                _RUNTIME = _Runtime()
    return _RUNTIME


def warm_up() -> None:
    """Import GE and create the context now (a warm worker's initializer calls this once)."""
    ge_runtime()


def _build(contract: Contract) -> list[Any]:
    """GE expectation objects of a contract; :class:`ContractError` names the field of a bad one."""
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    out = []
    for index, spec in enumerate(contract.expectations):
        try:
            cls = get_expectation_impl(spec.expectation)
        except ExpectationNotFoundError:
            raise ContractError(
                f"{contract.source}: {spec.origin}.expectation: {spec.expectation!r} is not a Great "
                "Expectations expectation type"
            ) from None
        try:
            out.append(
                cls(**spec.kwargs, meta={**spec.meta, "contract_field": spec.origin, "contract_index": index})
            )
        except Exception as err:  # pydantic.v1.ValidationError, TypeError: bad kwargs
            message = " ".join(str(err).split())
            raise ContractError(
                f"{contract.source}: {spec.origin}.kwargs: {spec.expectation}: {message}"
            ) from None
    return out


def check(frame: Any, contract: Contract) -> Verdict:
    """Validate ``frame`` (a pandas DataFrame) against ``contract`` with Great Expectations."""
    rt = ge_runtime()
    suite = rt.suite(contract)
    started = time.perf_counter()
    with rt.lock:  # one GE context per process: validations run one at a time
        # What ``batch_definition.get_batch(...).validate(suite)`` does, without the batch it would build
        # first only to build another inside ``validate``: each build costs GE a ``memory_usage`` and a
        # fingerprint hash over every column (~20 ms for 785 columns, whatever the rows).
        validator = rt.validator_class(
            batch_definition=rt.batch_definition,
            batch_parameters={"dataframe": frame},
            result_format=_RESULT_FORMAT,
        )
        _VALIDATING.memo = {} if _MEMOIZE else None
        _VALIDATING.domain = {} if _MEMOIZE else None
        try:
            result = validator.validate_expectation_suite(suite)
        finally:
            _VALIDATING.memo = _VALIDATING.domain = None
    seconds = time.perf_counter() - started
    columns = {str(c) for c in frame.columns}
    failed: list[tuple[int, FailedExpectation]] = []
    for r in result.results:
        if r.success:
            continue
        config = r.expectation_config
        raised = bool((r.exception_info or {}).get("raised_exception"))
        summary_values = observed(config.type, config.kwargs, r.result or {}, raised, columns)
        order = (config.meta or {}).get("contract_index", len(contract.expectations))
        failed.append((order, FailedExpectation(display_name(config.type, config.kwargs), summary_values)))
    stats = result.statistics
    summary = {
        "contract": contract.name,
        "dataset": contract.dataset,
        "contractVersion": contract.version,
        "contractSha256": contract.sha256,
        "evaluated": int(stats["evaluated_expectations"]),
        "successful": int(stats["successful_expectations"]),
        "unsuccessful": int(stats["unsuccessful_expectations"]),
        "checkSeconds": round(seconds, 4),
        "greatExpectations": rt.version,
    }
    ordered = [f for _, f in sorted(failed, key=lambda pair: pair[0])]  # in contract order
    return Verdict(bool(result.success) and not ordered, ordered, len(frame), summary, result)


def full_result_json(verdict: Verdict) -> str:
    """GE's whole validation result as JSON (it names offending values: it stays at the edge)."""
    if verdict.result is None:
        raise ValueError("this verdict carries no GE result (it was read back from JSON)")
    document = verdict.result.to_json_dict()
    document.setdefault("meta", {})["edgefed"] = {"rows": verdict.rows, **verdict.summary}
    return json.dumps(document, sort_keys=True, default=str)


def data_docs_html(verdict: Verdict) -> str:
    """A self-contained Data Docs page of the validation result, rendered by GE's own renderer.

    ``ValidationResultsPageRenderer`` + ``DefaultJinjaPageView`` need no file-based context. The page
    links GE's CSS/JS from public CDNs; offline it shows unstyled but complete. It names offending
    values: it stays at the edge.
    """
    if verdict.result is None:
        raise ValueError("this verdict carries no GE result (it was read back from JSON)")
    ge_runtime()
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    global _PAGE_VIEW
    if _PAGE_VIEW is None:
        # one view for every page: its Jinja environment keeps the compiled templates (a fresh view
        # compiles them again, ~40 ms a page)
        _PAGE_VIEW = DefaultJinjaPageView()
    document = ValidationResultsPageRenderer().render(verdict.result)
    return _PAGE_VIEW.render(document)


_PAGE_VIEW: Any = None
