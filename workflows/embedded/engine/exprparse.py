"""The parser of Argo's expression language (expr-lang): tokens, the syntax tree, precedence climbing.

Hand-written because no Python library implements expr-lang (``github.com/expr-lang/expr`` v1.17.8,
Go); this follows its ``parser/lexer/state.go`` (tokens, string escapes, ``not in`` and friends) and
``parser/parser.go`` with ``parser/operator``'s precedence table. :func:`parse` gives the tree that
:mod:`.expr` evaluates, and refuses what the embedded engine does not run (see :mod:`.expr`).

Why this module is long: it is the lexer, the syntax tree and the parser of one language (a dozen
node classes, a precedence table, one method per grammar rule); apart, each would only make sense
with the others open.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .exprlib import BUILTINS, PREDICATES, UNSUPPORTED_BUILTINS, ExprSyntaxError, ExprUnsupportedError

__all__ = [
    "COMPARISONS",
    "Array",
    "Binary",
    "Builtin",
    "Call",
    "Chain",
    "Cond",
    "Ident",
    "Lit",
    "Map",
    "Member",
    "Node",
    "Pointer",
    "Predicate",
    "Slice",
    "Unary",
    "parse",
]

# ------------------------------------------------------------------------------------------------ lexer

#: (kind, value, position): kind is "num", "str", "ident", "op", "bracket" or "eof".
_Tok = tuple[str, Any, int]

_WORD_OPERATORS = {"in", "or", "and", "matches", "contains", "startsWith", "endsWith", "let", "if", "else"}
_NEGATABLE = {"in", "matches", "contains", "startsWith", "endsWith"}
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*)?(?:\.(?!\.)[\d_]*)?(?:[eE][+-]?[\d_]+)?"
)


def _is_alnum(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def _unescape(body: str, quote: str, pos: int) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == quote:
            out.append(quote)
            i += 2
        elif nxt in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise ExprSyntaxError(f"invalid char escape at {pos + i}")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif re.fullmatch(r"[0-7]", nxt or "x") and re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 4
        else:
            raise ExprSyntaxError(f"invalid char escape at {pos + i}")
    return "".join(out)


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "'\"":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ExprSyntaxError(f"literal not terminated at {i}")
            toks.append(("str", _unescape(text[i + 1 : j], ch, i + 1), i))
            i = j + 1
        elif ch == "`":
            j = text.find("`", i + 1)
            while j != -1 and text[j - 1] == "\\":
                j = text.find("`", j + 1)
            if j == -1:
                raise ExprSyntaxError(f"literal not terminated at {i}")
            toks.append(("str", text[i + 1 : j].replace("\\`", "`"), i))
            i = j + 1
        elif ch in "bB" and text[i + 1 : i + 2] in ("'", '"'):
            raise ExprUnsupportedError(
                f"byte strings (b'...', at {i}) are not supported by the embedded engine"
            )
        elif ch.isdigit() or (ch == "." and text[i + 1 : i + 2].isdigit()):
            m = _NUMBER.match(text, i)
            end = m.end() if m else i
            if end < n and _is_alnum(text[end]):
                raise ExprSyntaxError(f"bad number syntax: {text[i : end + 1]!r} at {i}")
            toks.append(("num", text[i:end], i))
            i = end
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j == -1 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j == -1:
                raise ExprSyntaxError(f"unclosed comment at {i}")
            i = j + 2
        elif ch == "?":
            op = text[i : i + 2] if text[i + 1 : i + 2] in (".", "?") else "?"
            toks.append(("op", op, i))
            i += len(op)
        elif ch == "#":
            toks.append(("op", "#", i))
            i += 1
            j = i
            while j < n and _is_alnum(text[j]):
                j += 1
            if j > i:
                toks.append(("ident", text[i:j], i))
                i = j
        elif ch in "|:":
            op = text[i : i + 2] if text[i + 1 : i + 2] == ch else ch
            toks.append(("op", op, i))
            i += len(op)
        elif ch in "([{)]}":
            toks.append(("bracket", ch, i))
            i += 1
        elif ch in ",;%+-^/":
            toks.append(("op", ch, i))
            i += 1
        elif ch in "&!=*<>":
            op = text[i : i + 2] if text[i + 1 : i + 2] in ("&", "=", "*") else ch
            toks.append(("op", op, i))
            i += len(op)
        elif ch == ".":
            op = ".." if text.startswith("..", i) else "."
            toks.append(("op", op, i))
            i += len(op)
        elif _is_alnum(ch):
            j = i
            while j < n and _is_alnum(text[j]):
                j += 1
            word = text[i:j]
            if word == "not":
                toks.append(("op", "not", i))
                k = j
                while k < n and text[k].isspace():
                    k += 1
                m = k
                while m < n and _is_alnum(text[m]):
                    m += 1
                if text[k:m] in _NEGATABLE:
                    toks.append(("op", text[k:m], k))
                    j = m
            elif word in _WORD_OPERATORS:
                toks.append(("op", word, i))
            else:
                toks.append(("ident", word, i))
            i = j
        else:
            raise ExprSyntaxError(f"unrecognized character: {ch!r} at {i}")
    toks.append(("eof", None, n))
    return toks


# -------------------------------------------------------------------------------------------------- AST


class Node:
    __slots__ = ()

    def children(self) -> Iterator[Node]:
        return iter(())


@dataclass(frozen=True, slots=True, eq=False)
class Lit(Node):
    value: Any


@dataclass(frozen=True, slots=True, eq=False)
class Ident(Node):
    name: str


@dataclass(frozen=True, slots=True, eq=False)
class Pointer(Node):
    name: str  # "" (#), "index", "acc"


@dataclass(frozen=True, slots=True, eq=False)
class Member(Node):
    obj: Node
    prop: Node
    optional: bool

    def children(self) -> Iterator[Node]:
        yield self.obj
        yield self.prop


@dataclass(frozen=True, slots=True, eq=False)
class Chain(Node):
    node: Node

    def children(self) -> Iterator[Node]:
        yield self.node


@dataclass(frozen=True, slots=True, eq=False)
class Slice(Node):
    obj: Node
    lo: Node | None
    hi: Node | None

    def children(self) -> Iterator[Node]:
        yield from (n for n in (self.obj, self.lo, self.hi) if n is not None)


@dataclass(frozen=True, slots=True, eq=False)
class Call(Node):
    callee: Node
    args: tuple[Node, ...]

    def children(self) -> Iterator[Node]:
        yield self.callee
        yield from self.args


@dataclass(frozen=True, slots=True, eq=False)
class Builtin(Node):
    name: str
    args: tuple[Node, ...]

    def children(self) -> Iterator[Node]:
        yield from self.args


@dataclass(frozen=True, slots=True, eq=False)
class Predicate(Node):
    body: Node

    def children(self) -> Iterator[Node]:
        yield self.body


@dataclass(frozen=True, slots=True, eq=False)
class Unary(Node):
    op: str
    node: Node

    def children(self) -> Iterator[Node]:
        yield self.node


@dataclass(frozen=True, slots=True, eq=False)
class Binary(Node):
    op: str
    left: Node
    right: Node

    def children(self) -> Iterator[Node]:
        yield self.left
        yield self.right


@dataclass(frozen=True, slots=True, eq=False)
class Cond(Node):
    cond: Node
    then: Node
    other: Node

    def children(self) -> Iterator[Node]:
        yield from (self.cond, self.then, self.other)


@dataclass(frozen=True, slots=True, eq=False)
class Array(Node):
    items: tuple[Node, ...]

    def children(self) -> Iterator[Node]:
        yield from self.items


@dataclass(frozen=True, slots=True, eq=False)
class Map(Node):
    pairs: tuple[tuple[Node, Node], ...]

    def children(self) -> Iterator[Node]:
        for k, v in self.pairs:
            yield k
            yield v


# ----------------------------------------------------------------------------------------------- parser

#: parser/operator/operator.go: (precedence, right-associative)
_BINARY = {
    "|": (0, False),
    "or": (10, False),
    "||": (10, False),
    "and": (15, False),
    "&&": (15, False),
    "==": (20, False),
    "!=": (20, False),
    "<": (20, False),
    ">": (20, False),
    ">=": (20, False),
    "<=": (20, False),
    "in": (20, False),
    "matches": (20, False),
    "contains": (20, False),
    "startsWith": (20, False),
    "endsWith": (20, False),
    "..": (25, False),
    "+": (30, False),
    "-": (30, False),
    "*": (60, False),
    "/": (60, False),
    "%": (60, False),
    "**": (100, True),
    "^": (100, True),
    "??": (500, False),
}
_UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
COMPARISONS = {"<", ">", ">=", "<="}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _lex(text)
        self.i = 0
        self.depth = 0  # inside a predicate: '#' and '.field' refer to the element

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def is_(self, kind: str, *values: Any) -> bool:
        k, v, _ = self.toks[self.i]
        return k == kind and (not values or v in values)

    def advance(self) -> _Tok:
        tok = self.toks[self.i]
        if tok[0] != "eof":
            self.i += 1
        return tok

    def error(self, detail: str | None = None) -> ExprSyntaxError:
        kind, value, pos = self.tok
        if detail is None:
            detail = "unexpected end of expression" if kind == "eof" else f"unexpected token {value!r}"
        return ExprSyntaxError(f"{detail} (at position {pos})")

    def expect(self, kind: str, value: Any = None) -> None:
        if not self.is_(kind, *(() if value is None else (value,))):
            raise self.error()
        self.advance()

    def unsupported(self, what: str) -> ExprUnsupportedError:
        return ExprUnsupportedError(
            f"{what} (at position {self.tok[2]}) is not supported by the embedded engine"
        )

    def parse(self) -> Node:
        node = self.expression(0)
        if self.is_("op", ";"):
            raise self.unsupported("a ';' sequence")
        if not self.is_("eof"):
            raise self.error()
        return node

    def expression(self, precedence: int) -> Node:
        if precedence == 0 and self.is_("op", "let"):
            raise self.unsupported("'let' variables")
        if precedence == 0 and self.is_("op", "if"):
            raise self.unsupported("'if {} else {}'")
        left = self.primary()
        previous = ""
        while self.is_("op"):
            op = self.tok[1]
            negate = op == "not"
            if negate:
                nxt = self.toks[self.i + 1]
                if nxt[0] != "op" or nxt[1] not in _NEGATABLE:
                    self.advance()
                    raise self.error()
                if _BINARY[nxt[1]][0] < precedence:
                    break
                self.advance()
                op = nxt[1]
            info = _BINARY.get(op)
            if info is None or info[0] < precedence:
                break
            self.advance()
            if op == "|":
                raise self.unsupported("the pipe operator '|'")
            if previous == "??" and op != "??":
                raise ExprSyntaxError(
                    f"Operator ({op}) and coalesce expressions (??) cannot be mixed. Wrap either by parentheses."
                )
            if op in COMPARISONS:
                left = self.comparison(left, op, info[0])
            else:
                right = self.expression(info[0] if info[1] else info[0] + 1)
                left = Binary(op, left, right)
                if negate:
                    left = Unary("not", left)
            previous = op
        if precedence == 0:
            left = self.conditional(left)
        return left

    def comparison(self, left: Node, op: str, precedence: int) -> Node:
        root: Node | None = None
        while True:
            right = self.expression(precedence + 1)
            node = Binary(op, left, right)
            root = node if root is None else Binary("&&", root, node)
            left = right
            if not (self.is_("op") and self.tok[1] in COMPARISONS):
                return root
            op = self.advance()[1]

    def conditional(self, node: Node) -> Node:
        while self.is_("op", "?"):
            self.advance()
            if self.is_("op", ":"):
                self.advance()
                node = Cond(node, node, self.expression(0))
            else:
                then = self.expression(0)
                self.expect("op", ":")
                node = Cond(node, then, self.expression(0))
        return node

    def primary(self) -> Node:
        kind, value, _pos = self.tok
        if kind == "op" and value in _UNARY:
            self.advance()
            return self.postfix(Unary(value, self.expression(_UNARY[value])))
        if kind == "bracket" and value == "(":
            self.advance()
            node = self.expression(0)
            if self.is_("op", ";"):
                raise self.unsupported("a ';' sequence")
            self.expect("bracket", ")")
            return self.postfix(node)
        if self.depth > 0 and kind == "op" and value in ("#", "."):
            name = ""
            if value == "#":
                self.advance()
                if self.is_("ident"):
                    name = self.advance()[1]
                    if name not in ("index", "acc"):
                        raise ExprSyntaxError(f"unknown pointer #{name}")
            return self.postfix(Pointer(name))
        if kind == "op" and value == "::":
            raise self.unsupported("'::' calls")
        return self.secondary()

    def secondary(self) -> Node:
        kind, value, pos = self.advance()
        if kind == "ident":
            if value in ("true", "false"):
                return Lit(value == "true")
            if value == "nil":
                return Lit(None)
            if value == "$env":
                raise ExprUnsupportedError(
                    f"$env (at position {pos}) is not supported by the embedded engine"
                )
            node = self.call(value, pos) if self.is_("bracket", "(") else Ident(value)
            return self.postfix(node)
        if kind == "num":
            return Lit(_number(value))
        if kind == "str":
            return self.postfix(Lit(value))
        if kind == "bracket" and value == "[":
            items = []
            while not self.is_("bracket", "]"):
                if items:
                    self.expect("op", ",")
                    if self.is_("bracket", "]"):
                        break
                items.append(self.expression(0))
            self.expect("bracket", "]")
            return self.postfix(Array(tuple(items)))
        if kind == "bracket" and value == "{":
            return self.postfix(self.map_literal())
        self.i -= 1 if kind != "eof" else 0
        raise self.error()

    def map_literal(self) -> Node:
        pairs: list[tuple[Node, Node]] = []
        while not self.is_("bracket", "}"):
            if pairs:
                self.expect("op", ",")
                if self.is_("bracket", "}"):
                    break
            kind, value, _pos = self.tok
            if kind in ("num", "str", "ident"):
                self.advance()
                key: Node = Lit(str(value))
            elif kind == "bracket" and value == "(":
                key = self.expression(0)
            else:
                raise self.error(
                    "a map key must be a quoted string, a number, a identifier, or an expression enclosed in parentheses"
                )
            self.expect("op", ":")
            pairs.append((key, self.expression(0)))
        self.expect("bracket", "}")
        return Map(tuple(pairs))

    def call(self, name: str, pos: int) -> Node:
        if name in UNSUPPORTED_BUILTINS:
            raise ExprUnsupportedError(
                f"the built-in function {name}() (at position {pos}) is not supported by the embedded engine"
            )
        if name in PREDICATES:
            self.expect("bracket", "(")
            args: list[Node] = []
            for j, spec in enumerate(PREDICATES[name]):
                if spec.endswith("?") and self.is_("bracket", ")"):
                    break
                if j > 0:
                    self.expect("op", ",")
                args.append(self.predicate() if spec.startswith("p") else self.expression(0))
            if self.is_("op", ","):
                self.advance()
            self.expect("bracket", ")")
            return Builtin(name, tuple(args))
        args_ = tuple(self.arguments())
        if name in BUILTINS:
            return Builtin(name, args_)
        return Call(Ident(name), args_)

    def arguments(self) -> list[Node]:
        self.expect("bracket", "(")
        args: list[Node] = []
        while not self.is_("bracket", ")"):
            if args:
                self.expect("op", ",")
                if self.is_("bracket", ")"):
                    break
            args.append(self.expression(0))
        self.expect("bracket", ")")
        return args

    def predicate(self) -> Node:
        braces = self.is_("bracket", "{")
        if braces:
            self.advance()
        self.depth += 1
        body = self.expression(0)
        if self.is_("op", ";"):
            raise self.unsupported("a ';' sequence")
        self.depth -= 1
        if braces:
            self.expect("bracket", "}")
        return Predicate(body)

    def postfix(self, node: Node) -> Node:
        while self.is_("op", ".", "?.") or self.is_("bracket", "["):
            _kind, value, pos = self.advance()
            optional = value == "?."
            if value in (".", "?.") and not (optional and self.is_("bracket", "[")):
                pkind, prop, _ = self.advance()
                if not (pkind == "ident" or (pkind == "op" and re.fullmatch(r"[A-Za-z_$][\w$]*", str(prop)))):
                    raise ExprSyntaxError(f"expected name (at position {pos})")
                chained = isinstance(node, Chain)
                member = Member(node.node if isinstance(node, Chain) else node, Lit(prop), optional)
                if self.is_("bracket", "("):
                    if not _rooted_at_sprig(member):
                        raise ExprUnsupportedError(
                            f"method calls ({prop}(), at position {pos}) are not supported by the embedded engine"
                        )
                    node = Call(member, tuple(self.arguments()))
                else:
                    node = Chain(member) if chained or optional else member
                continue
            if optional:
                self.advance()  # the '[' after '?.'
            if self.is_("op", ":"):
                self.advance()
                hi = None if self.is_("bracket", "]") else self.expression(0)
                node = Slice(node, None, hi)
            else:
                index = self.expression(0)
                if self.is_("op", ":"):
                    self.advance()
                    hi = None if self.is_("bracket", "]") else self.expression(0)
                    node = Slice(node, index, hi)
                else:
                    member = Member(node.node if isinstance(node, Chain) else node, index, optional)
                    node = Chain(member) if optional or isinstance(node, Chain) else member
            self.expect("bracket", "]")
        return node


def _rooted_at_sprig(member: Member) -> bool:
    return isinstance(member.obj, Ident) and member.obj.name == "sprig" and isinstance(member.prop, Lit)


def _number(text: str) -> int | float:
    value = text.replace("_", "")
    lower = value.lower()
    try:
        if lower.startswith(("0x", "0o", "0b")):
            return int(value, 0)
        if "." in value or "e" in lower:
            return float(value)
        return int(value, 10)
    except ValueError:
        raise ExprSyntaxError(f"invalid number literal {text!r}") from None


def parse(text: str) -> Node:
    """The syntax tree of ``text``; :class:`ExprSyntaxError` / :class:`ExprUnsupportedError` if it
    is not expr-lang, or not the subset the embedded engine runs."""
    return _Parser(text).parse()
