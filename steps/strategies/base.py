"""The strategy protocol every aggregation algorithm implements, its server state, shared kernels.

The aggregate step drives one round of any strategy the same way::

    strategy.begin(global_weights, state)          # state: the previous round's ServerState, or None
    for update, examples, edge in accepted_updates:
        strategy.add(update, examples, edge)       # arrays are read-only views: never modified
    new_weights, new_state = strategy.finish()     # persist new_state next to the committed model

``begin``/``add``/``finish`` are written once here; an algorithm fills in three hooks
(``_begin``, ``_add``, ``_finish``). Parameters are keyword-only dataclass fields with defaults,
checked by :meth:`Strategy.validate` at construction. ``streaming`` says whether memory is
independent of the number of edges; non-streaming strategies spool updates to a temporary file
(:class:`UpdateSpool`) and work in coordinate chunks, so their peak RAM is O(n x chunk).

Pure NumPy, no network or object-store I/O (the spool is a local temporary file).
"""

from __future__ import annotations

import math
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from edgefed.steps import codec

#: Coordinates per step of the chunked one-pass kernels (delta norms, delta sums): 64 Ki
#: elements, 256-512 KB of temporary, which stays in cache.
KERNEL_CHUNK = 1 << 16
#: Default budget of one (n, chunk) block of the non-streaming strategies, in elements (4 MB
#: of float32): ``chunk = max(1, BLOCK_ELEMENTS // n)``.
BLOCK_ELEMENTS = 1 << 20

_STATE_KIND = "edgefed.ServerState"
_STATE_VERSION = 1


class StrategyError(ValueError):
    """A strategy's parameters, or a round's inputs, break one of its rules (the message says which).

    ``param``: the parameter (snake_case dataclass field) the rule is about, when there is one, so
    the spec can report the error at that field's path.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UpdateRejectedError(StrategyError):
    """One update cannot be aggregated (wrong number of arrays, shapes); the round can go on without it."""


# -- server state ----------------------------------------------------------------------------


@dataclass
class ServerState:
    """What a strategy carries from one round to the next: named arrays and JSON-able scalars.

    ``strategy`` names the algorithm that wrote it; ``scalars["rounds"]`` counts the rounds it has
    finished. Serialised with :mod:`edgefed.steps.codec` (an uncompressed npz, never a pickle).
    """

    strategy: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    scalars: dict[str, Any] = field(default_factory=dict)

    @property
    def rounds(self) -> int:
        return int(self.scalars.get("rounds", 0))

    def put_list(self, name: str, arrays: Sequence[np.ndarray]) -> None:
        """Store ``arrays`` (one per model array) as ``name/0000``, ``name/0001``, ..."""
        for key in [k for k in self.arrays if k.startswith(f"{name}/")]:
            del self.arrays[key]
        for i, a in enumerate(arrays):
            self.arrays[f"{name}/{i:04d}"] = a

    def get_list(self, name: str) -> list[np.ndarray] | None:
        """The arrays stored by :meth:`put_list` under ``name``, in order; None when there are none."""
        keys = sorted(k for k in self.arrays if k.startswith(f"{name}/"))
        return [self.arrays[k] for k in keys] if keys else None

    def to_bytes(self) -> bytes:
        names = sorted(self.arrays)
        meta = {
            "kind": _STATE_KIND,
            "version": _STATE_VERSION,
            "strategy": self.strategy,
            "names": names,
            "scalars": self.scalars,
        }
        return codec.encode([self.arrays[n] for n in names], meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> ServerState:
        arrays, meta = codec.decode(data)
        if meta.get("kind") != _STATE_KIND or meta.get("version") != _STATE_VERSION:
            raise codec.CodecError(
                f"not a server state (kind {meta.get('kind')!r} version {meta.get('version')!r}, "
                f"expected {_STATE_KIND!r} version {_STATE_VERSION})"
            )
        names = meta["names"]
        if len(names) != len(arrays):
            raise codec.CodecError(f"server state names {len(names)} arrays but holds {len(arrays)}")
        return cls(meta["strategy"], dict(zip(names, arrays, strict=True)), dict(meta["scalars"]))


# -- shared kernels -----------------------------------------------------------------------------


def accumulator_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype strategies compute in for a model array of ``dtype``: float32 or float64 as the
    array (float16 is widened to float32), float64 for integers."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype if dtype.itemsize >= 4 else np.dtype(np.float32)
    return np.dtype(np.float64)


def cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` in a model array's ``dtype`` (integers are rounded, not truncated)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iub":
        values = np.rint(values)
    return values.astype(dtype, copy=False)


def coordinate_chunks(shapes: Sequence[tuple[int, ...]], chunk: int) -> Iterator[tuple[int, int, int, int]]:
    """``(array index, start, stop, offset)`` covering every array's flat coordinates in pieces of
    at most ``chunk``; ``offset`` is where the array starts in the concatenation of all arrays."""
    offset = 0
    for i, shape in enumerate(shapes):
        size = math.prod(shape)
        for start in range(0, size, chunk):
            yield i, start, min(start + chunk, size), offset
        offset += size


def delta_norm(
    update: Sequence[np.ndarray], reference: Sequence[np.ndarray], *, chunk: int = KERNEL_CHUNK
) -> float:
    """Global L2 norm of ``update - reference`` over all arrays, chunk by chunk (no temporary bigger
    than ``chunk``), summed in float64. float32 (and float16) arrays are differenced and squared in
    float32 (BLAS sdot, ~3x the speed; a chunk whose float32 sum overflows is redone in float64), other
    dtypes in float64. Non-finite values give a non-finite norm."""
    largest = min(chunk, max((r.size for r in reference), default=1))
    buffers: dict[type, np.ndarray] = {}
    total = 0.0
    for u, r in zip(update, reference, strict=True):
        work = np.float32 if u.dtype.kind == "f" and u.dtype.itemsize <= 4 else np.float64
        buf = buffers.get(work)
        if buf is None:
            buf = buffers[work] = np.empty(max(largest, 1), work)
        uf, rf = u.reshape(-1), r.reshape(-1)
        for start in range(0, rf.size, chunk):
            stop = min(start + chunk, rf.size)
            d = buf[: stop - start]
            np.subtract(uf[start:stop], rf[start:stop], out=d, dtype=work)
            sq = float(np.dot(d, d))
            if work is np.float32 and math.isinf(sq):
                wide = np.subtract(uf[start:stop], rf[start:stop], dtype=np.float64)
                sq = float(np.dot(wide, wide))
            total += sq
    return math.sqrt(total)


class DeltaSum:
    """Streaming weighted sum of deltas ``Σ_k c_k (w_k - w_ref)``, chunk by chunk.

    Accumulating the deltas (not the weights, then subtracting) keeps their precision: a float32
    delta of 1e-4 on a weight of 1 has ~3 significant digits left after ``mean(w) - w_ref``, but
    all 7 when each ``w_k - w_ref`` is formed first. Memory: one accumulator the size of the
    model plus a ``chunk``-sized buffer, whatever the number of updates.
    """

    def __init__(self, reference: Sequence[np.ndarray], *, chunk: int = KERNEL_CHUNK) -> None:
        self.reference = list(reference)
        self.chunk = chunk
        self.sum = [np.zeros(r.shape, accumulator_dtype(r.dtype)) for r in self.reference]
        self.total_weight = 0.0
        self.count = 0
        largest = max((r.size for r in self.reference), default=1)
        self._bufs = {
            a.dtype: np.empty(min(chunk, largest), a.dtype) for a in self.sum
        }  # one scratch buffer per accumulator dtype

    def add(self, update: Sequence[np.ndarray], weight: float) -> None:
        for u, r, acc in zip(update, self.reference, self.sum, strict=True):
            uf, rf, af = u.reshape(-1), r.reshape(-1), acc.reshape(-1)
            buf = self._bufs[acc.dtype]
            for start in range(0, af.size, self.chunk):
                stop = min(start + self.chunk, af.size)
                d = buf[: stop - start]
                np.subtract(uf[start:stop], rf[start:stop], out=d)
                if weight != 1.0:
                    d *= weight
                af[start:stop] += d
        self.total_weight += weight
        self.count += 1

    def mean(self) -> list[np.ndarray]:
        """``sum / total_weight`` in place (the sum is consumed)."""
        if self.total_weight <= 0:
            raise StrategyError("no update with a positive weight to average")
        for a in self.sum:
            a /= a.dtype.type(self.total_weight)
        return self.sum


class UpdateSpool:
    """Updates spooled to a temporary file, one flattened row each, read back in coordinate chunks.

    ``add`` appends the update's arrays (cast to ``dtype``) to ``<tmpdir>/updates.bin`` a chunk
    at a time; ``block(start, stop)`` reads coordinates ``[start, stop)`` of every row into one
    fresh ``(n, stop - start)`` array with positioned reads (``os.preadv``). Nothing bigger than
    one block (and one ``KERNEL_CHUNK`` of conversion) is ever in process memory. Positioned reads
    rather than a ``numpy.memmap``: a mapping's touched pages stay in the process's resident set
    (a 20 x 50 MB median peaked at 1.16 GB of RSS through a memmap, 0.16 GB this way); the temporary
    directory is under ``$TMPDIR`` (give the pod an ``emptyDir`` of n x model bytes).
    """

    def __init__(self, shapes: Sequence[tuple[int, ...]], dtype: np.dtype, *, directory: str | None = None):
        self.shapes = [tuple(s) for s in shapes]
        self.dtype = np.dtype(dtype)
        self.size = sum(math.prod(s) for s in self.shapes)
        self.rows = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="edgefed-spool-", dir=directory)
        self.path = os.path.join(self._tmp.name, "updates.bin")
        self._writer = open(self.path, "wb")  # noqa: SIM115 - closed by close() or the first block()
        self._reader: int | None = None

    def add(self, update: Sequence[np.ndarray]) -> int:
        """Append one update; returns its row number."""
        if self._writer.closed:
            raise RuntimeError("the spool is closed for writing once block() was called")
        for u in update:
            flat = u.reshape(-1)
            for start in range(0, flat.size, KERNEL_CHUNK):
                np.asarray(flat[start : start + KERNEL_CHUNK], dtype=self.dtype).tofile(self._writer)
        self.rows += 1
        return self.rows - 1

    def block(self, start: int, stop: int, rows: Sequence[int] | None = None) -> np.ndarray:
        """A fresh in-RAM ``(len(rows), stop - start)`` array of coordinates ``[start, stop)``
        of every row (or of ``rows``, in that order)."""
        if self._reader is None:
            self._writer.close()
            self._reader = os.open(self.path, os.O_RDONLY)
        rows = range(self.rows) if rows is None else rows
        out = np.empty((len(rows), stop - start), self.dtype)
        item = self.dtype.itemsize
        for j, row in enumerate(rows):
            view = memoryview(out[j]).cast("B")
            offset, done = (row * self.size + start) * item, 0
            while done < len(view):
                got = os.preadv(self._reader, [view[done:]], offset + done)
                if got <= 0:
                    raise OSError(f"spool {self.path}: short read at byte {offset + done}")
                done += got
        return out

    def close(self) -> None:
        if not self._writer.closed:
            self._writer.close()
        if self._reader is not None:
            os.close(self._reader)
            self._reader = None
        self._tmp.cleanup()


def default_chunk(n: int, chunk: int | None) -> int:
    """Coordinates per block for ``n`` spooled updates: ``chunk`` if given, else ``BLOCK_ELEMENTS // n``."""
    return chunk if chunk is not None else max(1, BLOCK_ELEMENTS // max(n, 1))


# -- the strategy ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Strategy(ABC):
    """One aggregation algorithm. Subclasses are keyword-only dataclasses of their parameters.

    Class attributes: ``name`` (the spec's ``aggregation.algorithm``) and ``streaming`` (memory
    independent of the number of edges). After :meth:`finish`, :attr:`report` holds JSON-able
    facts about the round for the lineage (e.g. which edges Krum selected).
    """

    name: ClassVar[str]
    streaming: ClassVar[bool]

    def __post_init__(self) -> None:
        self.validate()
        self.report: dict[str, Any] = {}
        self._global: list[np.ndarray] | None = None
        self._state: ServerState | None = None
        self._edges: list[str] = []

    # -- parameters ---------------------------------------------------------------------------
    def validate(self) -> None:  # noqa: B027 - optional: a strategy without parameters has no rule
        """Raise :class:`StrategyError` naming the parameter and the rule it breaks."""

    @property
    def min_updates(self) -> int:
        """Fewest updates a round needs (the spec's quorum should be at least this)."""
        return 1

    def edge_settings(self) -> dict[str, Any]:
        """Extra training settings the edges need (camelCase, merged into ``training``); FedProx's μ."""
        return {}

    def check_count(self, n: int) -> None:
        """Raise :class:`StrategyError` unless a round of ``n`` updates can be aggregated."""
        if n < self.min_updates:
            raise self._fail(f"needs at least {self.min_updates} update(s), got {n}")

    def privacy_spent(self, state: ServerState) -> dict[str, Any] | None:
        """The privacy spent so far by the rounds ``state`` has seen (JSON-able), or None when the
        strategy gives no differential-privacy guarantee (every one but DP-FedAvg)."""
        return None

    def _fail(self, message: str, *, param: str | None = None) -> StrategyError:
        return StrategyError(f"{self.name}: {message}", param=param)

    def _check_range(
        self,
        param: str,
        value: float,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
    ) -> None:
        """Raise unless ``low <(=) value <(=) high`` (bounds optional, open when told)."""
        ok = math.isfinite(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            left = "" if low is None else f"{low} {'<' if low_open else '<='} "
            right = "" if high is None else f" {'<' if high_open else '<='} {high}"
            raise self._fail(f"{param}={value} breaks {left}{param}{right}", param=param)

    # -- the round ----------------------------------------------------------------------------
    def begin(self, global_weights: Sequence[np.ndarray], state: ServerState | None = None) -> None:
        """Start a round from the current global model and the previous round's state."""
        if state is not None and state.strategy != self.name:
            raise self._fail(
                f"the server state was written by {state.strategy!r}; start from None to switch algorithms"
            )
        self.close()
        self._global = [np.asarray(w) for w in global_weights]
        self._state = state if state is not None else ServerState(self.name)
        self._edges = []
        self.report = {}
        self._begin(self._global, self._state)

    def add(self, update_weights: Sequence[np.ndarray], examples: int, edge: str) -> None:
        """Add one accepted update (read-only arrays in model order) of ``examples`` examples."""
        if self._global is None:
            raise RuntimeError(f"{self.name}: add() before begin()")
        if examples < 0:
            raise UpdateRejectedError(f"{self.name}: edge {edge!r} reports {examples} examples")
        if len(update_weights) != len(self._global):
            raise UpdateRejectedError(
                f"update has {len(update_weights)} arrays, the model has {len(self._global)}"
            )
        for i, (a, g) in enumerate(zip(update_weights, self._global, strict=True)):
            if a.shape != g.shape:
                raise UpdateRejectedError(f"array {i}: shape {a.shape}, expected {g.shape}")
        self._add(update_weights, examples, edge)
        self._edges.append(edge)

    def finish(self) -> tuple[list[np.ndarray], ServerState]:
        """The new global weights (the model's dtypes) and the state to persist for the next round."""
        if self._global is None or self._state is None:
            raise RuntimeError(f"{self.name}: finish() before begin()")
        n = len(self._edges)
        try:
            self.check_count(n)
            weights = self._finish(self._global, self._state)
        finally:
            self.close()
        weights = [cast_like(w, g.dtype) for w, g in zip(weights, self._global, strict=True)]
        state = self._state
        state.scalars["rounds"] = state.rounds + 1
        self.report.setdefault("updates", n)
        self._global, self._state = None, None
        return weights, state

    def run(
        self,
        global_weights: Sequence[np.ndarray],
        updates: Iterable[tuple[Sequence[np.ndarray], int, str]],
        state: ServerState | None = None,
    ) -> tuple[list[np.ndarray], ServerState]:
        """One whole round over ``(weights, examples, edge)`` triples (may be a lazy generator)."""
        self.begin(global_weights, state)
        for weights, examples, edge in updates:
            self.add(weights, examples, edge)
        return self.finish()

    def close(self) -> None:  # noqa: B027 - optional: only spooling strategies hold resources
        """Release what a round holds (temporary files); called by finish, safe to call any time."""

    # -- the hooks an algorithm implements -----------------------------------------------------
    @abstractmethod
    def _begin(self, global_weights: list[np.ndarray], state: ServerState) -> None:
        """Prepare the round's accumulators; read what the previous round left in ``state``."""

    @abstractmethod
    def _add(self, update: Sequence[np.ndarray], examples: int, edge: str) -> None:
        """Fold one update in (shapes and count already checked). Never modify ``update``."""

    @abstractmethod
    def _finish(self, global_weights: list[np.ndarray], state: ServerState) -> list[np.ndarray]:
        """The new weights; write what the next round needs into ``state``; fill ``self.report``."""


@dataclass(kw_only=True)
class SpooledStrategy(Strategy):
    """Base of the non-streaming strategies: ``add`` spools each update to a temporary file
    (:class:`UpdateSpool`), ``finish`` works through ``(n, chunk)`` blocks of coordinates.

    ``chunk``: coordinates per block (None: ``BLOCK_ELEMENTS // n``, i.e. ~4 MB blocks of
    float32). Peak RAM is O(n x chunk) plus the result, never O(n x model).
    """

    streaming: ClassVar[bool] = False
    chunk: int | None = None

    def validate(self) -> None:
        if self.chunk is not None and self.chunk < 1:
            raise self._fail(f"chunk={self.chunk} breaks chunk >= 1 (coordinates per block)", param="chunk")

    def _begin(self, global_weights: list[np.ndarray], state: ServerState) -> None:
        dtype = np.result_type(np.float32, *(accumulator_dtype(g.dtype) for g in global_weights))
        self._spool = UpdateSpool([g.shape for g in global_weights], dtype)
        self._examples: list[int] = []

    def _add(self, update: Sequence[np.ndarray], examples: int, edge: str) -> None:
        self._spool.add(update)
        self._examples.append(examples)

    def close(self) -> None:
        spool = getattr(self, "_spool", None)
        if spool is not None:
            spool.close()
        self._spool = None

    def _blocks(self, global_weights: list[np.ndarray]) -> Iterator[tuple[int, int, int, np.ndarray]]:
        """``(array index, start, stop, block)``: each ``(n, stop - start)`` block of the spool."""
        n = self._spool.rows
        chunk = default_chunk(n, self.chunk)
        for i, start, stop, offset in coordinate_chunks([g.shape for g in global_weights], chunk):
            yield i, start, stop, self._spool.block(offset + start, offset + stop)


__all__ = [
    "BLOCK_ELEMENTS",
    "KERNEL_CHUNK",
    "DeltaSum",
    "ServerState",
    "SpooledStrategy",
    "Strategy",
    "StrategyError",
    "UpdateRejectedError",
    "UpdateSpool",
    "accumulator_dtype",
    "cast_like",
    "coordinate_chunks",
    "default_chunk",
    "delta_norm",
]
