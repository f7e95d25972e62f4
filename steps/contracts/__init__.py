"""Data contracts: what an edge's dataset must look like before it may train, checked at the edge.

A contract is plain data (``data_contracts/<name>.yaml``, see ``data_contracts/README.md``): the
expected columns in model-input order with their types, value ranges and null rates, the row count,
the allowed labels and a sanity bound on label balance, plus any further Great Expectations (GE)
expectations verbatim. :func:`load_contract` reads it into a :class:`Contract`, a flat list of GE
expectation configurations; :func:`check` validates a DataFrame against it with GE 1.x and returns a
:class:`Verdict`, the only thing that leaves the edge.

=================  ===============================================================================
module             what it holds
=================  ===============================================================================
``document``       the YAML as a pydantic model: strict, every problem at once with its field path
``expansion``      the document expanded into :class:`ExpectationSpec` s; the contract's SHA-256
``loader``         where contracts are found (``$EDGEFED_CONTRACTS``, ``edgefed.data_contracts``)
``verdict``        :class:`Verdict` and the allowlist of what may leave the edge (its table on top)
``runtime``        GE once per process: the ephemeral context, suites cached by SHA-256, :func:`check`
``expectations``   edgefed's own GE metrics and expectations (imported only when GE is)
=================  ===============================================================================

Importing this package does not import GE (about 3-5 s): the first :func:`check` does, or
:func:`warm_up` in a warm worker's initializer.
"""

from __future__ import annotations

from edgefed.steps.contracts.errors import ContractError
from edgefed.steps.contracts.expansion import Contract, ExpectationSpec
from edgefed.steps.contracts.loader import (
    CONTRACTS_ENV,
    DEFAULT_CONTRACTS_DIR,
    contract_path,
    load_contract,
    parse_contract,
)
from edgefed.steps.contracts.runtime import check, data_docs_html, full_result_json, warm_up
from edgefed.steps.contracts.verdict import FailedExpectation, Verdict

__all__ = [
    "CONTRACTS_ENV",
    "DEFAULT_CONTRACTS_DIR",
    "Contract",
    "ContractError",
    "ExpectationSpec",
    "FailedExpectation",
    "Verdict",
    "check",
    "contract_path",
    "data_docs_html",
    "full_result_json",
    "load_contract",
    "parse_contract",
    "warm_up",
]
