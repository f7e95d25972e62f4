"""Secure aggregation: the protocol, pure (no I/O). The steps that run it are :mod:`edgefed.steps.secure`.

Bonawitz, Ivanov, Kreuter, Marcedone, McMahan, Patel, Ramage, Segal, Seth: "Practical Secure Aggregation
for Privacy-Preserving Machine Learning", CCS 2017 (https://arxiv.org/abs/1611.04482), its semi-honest
variant. Each edge ``u`` of the round:

1. **advertises keys**: two X25519 key pairs, ``c`` (to encrypt the shares it sends) and ``s`` (to agree
   pairwise masks), and draws a self-mask seed ``b_u``. The secrets stay in the edge's own store.
2. **shares**: Shamir-splits ``b_u`` and its ``s`` private key into one share per edge of the roster
   (threshold ``t``), each encrypted (AES-GCM) under the key ``u`` agrees with that edge's ``c`` key; the
   server only relays ciphertexts.
3. **masks** its input ``x_u`` (its weighted update ``c_u (w_u - w_global)`` in fixed point, mod 2^64):
   ``y_u = x_u + PRG(b_u) + Σ_{v > u} PRG(s_uv) - Σ_{v < u} PRG(s_uv)`` over the edges ``v`` that shared,
   ``s_uv`` agreed from ``u``'s and ``v``'s ``s`` keys (so ``s_uv = s_vu``: the pairwise masks cancel in
   the sum). ``y_u`` is uniformly distributed whatever ``x_u`` is: it is all the server ever holds.
4. **unmasks**: each surviving edge reveals, for every edge that sent a masked input, its share of ``b``,
   and for every edge that shared but dropped before its masked input arrived, its share of ``s`` - never
   both of one edge. From ``t`` responses the server rebuilds the self-mask seeds of the survivors and the
   ``s`` keys of the dropped edges, and removes every mask left in ``Σ y_u``: it learns the sum only.

Every derived key is bound to the round (``context``: task, round, workflow) and to the pair of edges, so
nothing agreed in one round serves another. The PRG is AES-256 in counter mode (a fresh key per seed).

Crypto comes from ``cryptography`` (X25519, HKDF-SHA256, AES-GCM, AES-CTR). Written here, because no
well-kept Python library implements it: Shamir's sharing over the prime field GF(2^521 - 1) (a 32-byte
secret is one element), the mask bookkeeping and the fixed-point encoding.
"""

from __future__ import annotations

import base64
import json
import math
import secrets as _random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

__all__ = [
    "DEFAULT_FRACTION_BITS",
    "DEFAULT_THRESHOLD",
    "PRIME",
    "EdgeSecrets",
    "Response",
    "Roster",
    "SecAggError",
    "combine",
    "decode",
    "decrypt_shares",
    "encode",
    "encrypt_shares",
    "mask",
    "prg",
    "recover",
    "respond",
    "split",
    "threshold_for",
    "unmask",
]

#: Shamir's field: the Mersenne prime 2^521 - 1, larger than any 32-byte secret.
PRIME = 2**521 - 1
SECRET_BYTES = 32
#: Fixed point: ``round(x * 2^fraction_bits)`` as a two's-complement integer mod 2^64.
DEFAULT_FRACTION_BITS = 24
#: The share of the roster whose responses rebuild a secret (Bonawitz et al. suggest t > 2n/3).
DEFAULT_THRESHOLD = 2 / 3
#: Fewest edges a secure round may have: with two, each would learn the other's update from the sum.
MIN_EDGES = 3


class SecAggError(ValueError):
    """The protocol cannot go on: too few edges or shares, a value out of the encoding's range, a share
    that does not decrypt."""


def threshold_for(n: int, fraction: float = DEFAULT_THRESHOLD) -> int:
    """The number of shares that rebuild a secret in a roster of ``n`` edges: ``ceil(fraction n)``, more
    than half of them (so two disjoint groups can never both rebuild), at least 2."""
    return max(2, n // 2 + 1, math.ceil(fraction * n - 1e-9))


# -- keys ---------------------------------------------------------------------------------------------
def _raw_public(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class EdgeSecrets:
    """What one edge keeps to itself for a round: its two X25519 private keys and its self-mask seed."""

    share_key: bytes  # c: agrees the keys that encrypt the shares it sends and receives
    mask_key: bytes  # s: agrees its pairwise masks
    self_seed: bytes  # b: its self mask

    @classmethod
    def generate(cls) -> EdgeSecrets:
        def raw(key: X25519PrivateKey) -> bytes:
            return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

        return cls(
            share_key=raw(X25519PrivateKey.generate()),
            mask_key=raw(X25519PrivateKey.generate()),
            self_seed=_random.token_bytes(SECRET_BYTES),
        )

    def public(self) -> dict[str, str]:
        """The public keys it advertises (hex): ``{"share": ..., "mask": ...}``."""
        return {
            "share": _raw_public(X25519PrivateKey.from_private_bytes(self.share_key)).hex(),
            "mask": _raw_public(X25519PrivateKey.from_private_bytes(self.mask_key)).hex(),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"share": self.share_key.hex(), "mask": self.mask_key.hex(), "self": self.self_seed.hex()}
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> EdgeSecrets:
        doc = json.loads(data)
        return cls(bytes.fromhex(doc["share"]), bytes.fromhex(doc["mask"]), bytes.fromhex(doc["self"]))


@dataclass(frozen=True)
class Roster:
    """The edges that advertised keys for a round, their public keys, the threshold and the encoding:
    what the server publishes after the keys phase. ``edges`` is sorted; an edge's Shamir x coordinate is
    its position + 1."""

    context: str  # task/round/workflow: binds every key derived from the roster to this round
    keys: Mapping[str, Mapping[str, str]]  # edge -> {"share": hex, "mask": hex}
    threshold: int
    fraction_bits: int = DEFAULT_FRACTION_BITS

    @property
    def edges(self) -> list[str]:
        return sorted(self.keys)

    def index(self, edge: str) -> int:
        return self.edges.index(edge) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "keys": {e: dict(self.keys[e]) for e in self.edges},
            "threshold": self.threshold,
            "fractionBits": self.fraction_bits,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Roster:
        return cls(
            context=doc["context"],
            keys=doc["keys"],
            threshold=int(doc["threshold"]),
            fraction_bits=int(doc["fractionBits"]),
        )

    @classmethod
    def build(
        cls,
        context: str,
        keys: Mapping[str, Mapping[str, str]],
        *,
        fraction: float = DEFAULT_THRESHOLD,
        fraction_bits: int = DEFAULT_FRACTION_BITS,
    ) -> Roster:
        """The roster of the edges that advertised ``keys``; :class:`SecAggError` when too few did."""
        if len(keys) < MIN_EDGES:
            raise SecAggError(
                f"secure aggregation needs at least {MIN_EDGES} edges, {len(keys)} advertised keys"
                + (f" ({', '.join(sorted(keys))})" if keys else "")
            )
        for edge, pair in keys.items():
            for name in ("share", "mask"):
                if len(bytes.fromhex(pair.get(name, ""))) != 32:
                    raise SecAggError(f"edge {edge}: its {name!r} public key is not a 32-byte X25519 key")
        return cls(context, dict(keys), threshold_for(len(keys), fraction), fraction_bits)


def _agree(private: bytes, peer_public_hex: str, *, purpose: str, context: str, a: str, b: str) -> bytes:
    """A 32-byte key for ``purpose`` between edges ``a`` and ``b`` in this round: X25519 then HKDF-SHA256,
    with the (ordered) pair and the round in the HKDF info, so both ends derive the same key."""
    shared = X25519PrivateKey.from_private_bytes(private).exchange(
        X25519PublicKey.from_public_bytes(bytes.fromhex(peer_public_hex))
    )
    low, high = sorted((a, b))
    info = f"edgefed-secagg/{purpose}/{context}/{low}/{high}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def _peer_key(private: bytes, roster: Roster, me: str, peer: str, purpose: str) -> bytes:
    """The key ``me`` agrees with ``peer`` in this round from its ``purpose`` key pair (share or mask)."""
    return _agree(private, roster.keys[peer][purpose], purpose=purpose, context=roster.context, a=me, b=peer)


# -- Shamir's secret sharing over GF(PRIME) -----------------------------------------------------------
def split(secret: bytes, xs: Sequence[int], threshold: int) -> dict[int, int]:
    """Shares of ``secret`` at the points ``xs`` (distinct, non-zero), any ``threshold`` of which rebuild it:
    a random polynomial of degree ``threshold - 1`` over GF(PRIME) whose constant term is the secret."""
    if not 1 <= threshold <= len(xs):
        raise SecAggError(f"threshold {threshold} of {len(xs)} shares")
    coefficients = [int.from_bytes(secret, "big")] + [_random.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = {}
    for x in xs:
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares[x] = y
    return shares


def _lagrange_at_zero(xs: Sequence[int]) -> dict[int, int]:
    """The Lagrange coefficients ``λ_i`` with ``f(0) = Σ λ_i f(x_i)`` for a polynomial of degree < len(xs)."""
    out = {}
    for i in xs:
        num, den = 1, 1
        for j in xs:
            if j != i:
                num = num * (-j) % PRIME
                den = den * (i - j) % PRIME
        out[i] = num * pow(den, -1, PRIME) % PRIME
    return out


def combine(shares: Mapping[int, int], threshold: int) -> bytes:
    """The secret that ``shares`` (x -> y, at least ``threshold`` of them) are shares of."""
    if len(shares) < threshold:
        raise SecAggError(f"{len(shares)} share(s), {threshold} needed")
    xs = sorted(shares)[:threshold]
    coefficients = _lagrange_at_zero(xs)
    value = sum(coefficients[x] * shares[x] for x in xs) % PRIME
    if value >= 1 << (8 * SECRET_BYTES):
        raise SecAggError("the shares do not rebuild a 32-byte secret (inconsistent shares)")
    return value.to_bytes(SECRET_BYTES, "big")


# -- the shares an edge sends ------------------------------------------------------------------------
def _aad(roster: Roster, sender: str, recipient: str) -> bytes:
    return f"{roster.context}|{sender}->{recipient}".encode()


def encrypt_shares(edge: str, own: EdgeSecrets, roster: Roster) -> dict[str, str]:
    """``edge``'s shares of its self-mask seed and its mask key, one per edge of the roster (itself
    included), each encrypted for its recipient: ``{recipient: base64(nonce + AES-GCM ciphertext)}``."""
    xs = [roster.index(e) for e in roster.edges]
    self_shares = split(own.self_seed, xs, roster.threshold)
    mask_shares = split(own.mask_key, xs, roster.threshold)
    out = {}
    for recipient in roster.edges:
        x = roster.index(recipient)
        key = _peer_key(own.share_key, roster, edge, recipient, "share")
        plain = json.dumps({"self": f"{self_shares[x]:x}", "mask": f"{mask_shares[x]:x}"}).encode()
        nonce = _random.token_bytes(12)
        sealed = AESGCM(key).encrypt(nonce, plain, _aad(roster, edge, recipient))
        out[recipient] = base64.b64encode(nonce + sealed).decode()
    return out


def decrypt_shares(
    edge: str, own: EdgeSecrets, roster: Roster, inbox: Mapping[str, str]
) -> dict[str, tuple[int, int]]:
    """The shares the edges of ``inbox`` (``{sender: ciphertext}``) sent ``edge``: ``{sender: (self, mask)}``.
    :class:`SecAggError` names a sender whose share does not decrypt (tampered, or not for this round)."""
    out = {}
    for sender, blob in inbox.items():
        if sender not in roster.keys:
            raise SecAggError(f"a share from {sender!r}, which is not in the round's roster")
        raw = base64.b64decode(blob)
        key = _peer_key(own.share_key, roster, edge, sender, "share")
        try:
            doc = json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], _aad(roster, sender, edge)))
        except InvalidTag:
            raise SecAggError(
                f"the share {sender} sent does not decrypt (tampered, or of another round)"
            ) from None
        out[sender] = (int(doc["self"], 16), int(doc["mask"], 16))
    return out


# -- masking ------------------------------------------------------------------------------------------
def prg(seed: bytes, size: int) -> np.ndarray:
    """``size`` pseudo-random uint64 words from a 32-byte seed: the AES-256-CTR keystream (a fresh key per
    seed, so the fixed counter start is safe)."""
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(b"\0" * 16)).encryptor()
    return np.frombuffer(encryptor.update(bytes(8 * size)), dtype="<u8").copy()


def _limit(roster: Roster, n: int) -> float:
    """The largest ``|x|`` an input may hold so that the sum of ``n`` inputs stays inside int64."""
    return float(2**63 - 1) / (n * 2.0**roster.fraction_bits)


def encode(values: np.ndarray, roster: Roster, n: int) -> np.ndarray:
    """``values`` (float) in fixed point mod 2^64, for a sum of ``n`` inputs; :class:`SecAggError` when one
    is not finite or too large for that sum."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(values).all():
        raise SecAggError("the update has values that are not finite numbers")
    peak = float(np.abs(values).max(initial=0.0))
    limit = _limit(roster, n)
    if peak >= limit:
        raise SecAggError(
            f"an update value of magnitude {peak:.3g} exceeds what {roster.fraction_bits} fraction bits "
            f"hold for a sum of {n} inputs ({limit:.3g})"
        )
    return np.rint(values * 2.0**roster.fraction_bits).astype(np.int64).view(np.uint64)


def decode(total: np.ndarray, roster: Roster) -> np.ndarray:
    """A sum of encoded inputs back to float64."""
    return total.view(np.int64).astype(np.float64) / 2.0**roster.fraction_bits


def _pair_mask(own_mask_key: bytes, peer: str, me: str, roster: Roster, size: int) -> np.ndarray:
    return prg(_peer_key(own_mask_key, roster, me, peer, "mask"), size)


def mask(
    encoded: np.ndarray, edge: str, own: EdgeSecrets, roster: Roster, sharers: Iterable[str]
) -> np.ndarray:
    """``y_u``: ``edge``'s encoded input plus its self mask and its pairwise masks with every other edge
    that shared (``+`` towards edges after it in name order, ``-`` towards those before)."""
    size = encoded.size
    out = encoded.astype(np.uint64, copy=True)
    out += prg(own.self_seed, size)
    for peer in sharers:
        if peer == edge:
            continue
        pair = _pair_mask(own.mask_key, peer, edge, roster, size)
        if edge < peer:
            out += pair
        else:
            out -= pair
    return out


@dataclass(frozen=True)
class Response:
    """One surviving edge's unmasking answer: its shares of each survivor's self seed and of each dropped
    edge's mask key (x coordinate: its own roster index)."""

    edge: str
    survivors: tuple[str, ...]
    self_shares: Mapping[str, int]
    mask_shares: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "edge": self.edge,
            "survivors": list(self.survivors),
            "selfShares": {e: f"{v:x}" for e, v in sorted(self.self_shares.items())},
            "maskShares": {e: f"{v:x}" for e, v in sorted(self.mask_shares.items())},
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Response:
        return cls(
            edge=doc["edge"],
            survivors=tuple(doc["survivors"]),
            self_shares={e: int(v, 16) for e, v in doc["selfShares"].items()},
            mask_shares={e: int(v, 16) for e, v in doc["maskShares"].items()},
        )


def respond(
    edge: str,
    received: Mapping[str, tuple[int, int]],
    sharers: Sequence[str],
    survivors: Sequence[str],
) -> Response:
    """``edge``'s answer for this set of survivors: self-seed shares of the survivors, mask-key shares of
    the edges that shared and did not survive. Never both of one edge (that would unmask its input)."""
    survivors = sorted(survivors)
    unknown = set(survivors) - set(sharers)
    if unknown:
        raise SecAggError(f"survivors {sorted(unknown)} did not share: the server's survivor list is wrong")
    if edge not in survivors:
        raise SecAggError(f"{edge} is not among the survivors: it does not answer")
    missing = [e for e in sharers if e not in received]
    if missing:
        raise SecAggError(f"no share received from {missing}")
    dropped = [e for e in sharers if e not in survivors]
    return Response(
        edge=edge,
        survivors=tuple(survivors),
        self_shares={e: received[e][0] for e in survivors},
        mask_shares={e: received[e][1] for e in dropped},
    )


def recover(
    roster: Roster, sharers: Sequence[str], survivors: Sequence[str], responses: Iterable[Response]
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """From the responses (those given for exactly ``survivors``, at least the threshold of them): the
    survivors' self-mask seeds and the dropped edges' mask keys."""
    survivors = sorted(survivors)
    usable = [r for r in responses if sorted(r.survivors) == survivors and r.edge in survivors]
    if len(usable) < roster.threshold:
        raise SecAggError(
            f"{len(usable)} unmasking response(s) for these {len(survivors)} survivors, "
            f"{roster.threshold} needed to remove the masks"
        )
    dropped = [e for e in sharers if e not in survivors]

    def rebuild(of: str, kind: str) -> bytes:
        return combine(
            {roster.index(r.edge): (r.self_shares if kind == "self" else r.mask_shares)[of] for r in usable},
            roster.threshold,
        )

    return {e: rebuild(e, "self") for e in survivors}, {e: rebuild(e, "mask") for e in dropped}


def unmask(
    total: np.ndarray,
    roster: Roster,
    survivors: Sequence[str],
    self_seeds: Mapping[str, bytes],
    dropped_mask_keys: Mapping[str, bytes],
) -> np.ndarray:
    """``Σ x_u`` from ``Σ y_u`` over the survivors: minus each survivor's self mask, minus the pairwise
    masks each survivor shares with a dropped edge (rebuilt from the dropped edge's mask key)."""
    size = total.size
    out = total.astype(np.uint64, copy=True)
    for edge in survivors:
        out -= prg(self_seeds[edge], size)
    for gone, key in dropped_mask_keys.items():
        for edge in survivors:
            pair = _pair_mask(key, edge, gone, roster, size)  # s_{gone,edge} = s_{edge,gone}
            if edge < gone:  # the survivor added it
                out -= pair
            else:
                out += pair
    return out
