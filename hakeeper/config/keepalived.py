"""Read an unchanged keepalived.conf into the model, with keepalived's lexical rules.

The lexer follows keepalived's lib/parser.c: `#` and `!` start a comment outside double
quotes (`\\#` is a literal `#`), `{` and `}` split a line
wherever they appear outside quotes (so braces may sit on the keyword's line, the next line,
or several on one line), `"..."` is one word, and `include GLOB` (relative to the including
file) splices files in at any depth. Script keywords re-split their command with
keepalived's quoting and escapes. Meaning and validation live in build.py.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass

from hakeeper.config.build import SCRIPT_KEYWORDS, Node, build_config
from hakeeper.config.errors import ConfigError, ConfigErrors
from hakeeper.config.model import Config, Origin, Warning_

_WHITE = " \t\r\n\v\f"
_MAX_INCLUDE_DEPTH = 32
_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_ESCAPES["v"] = "\v"


class QuoteError(ValueError):
    """A quote opened and never closed."""


def split_words(text: str) -> list[str]:
    """keepalived's alloc_strvec_r: words split on blanks; `"a b"` is one word, unquoted."""
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITE:
            i += 1
        if i >= n:
            return words
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QuoteError(f"unmatched quote: {text}")
            words.append(text[i + 1 : end])
            i = end + 1
            continue
        start = i
        while i < n and text[i] not in _WHITE and text[i] != '"':
            i += 1
        words.append(text[start:i])


def split_quoted(text: str, escapes: bool) -> list[str]:
    """keepalived's alloc_strvec_quoted[_escaped]: shell-like words with '...' and "..."
    quotes that may join parts of one word; with `escapes`, backslash sequences (\\n, \\t,
    \\x41, \\101, \\cX, \\", \\') are decoded, else the backslash is kept verbatim."""
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITE:
            i += 1
        if i >= n:
            return words
        out: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if c == "\\":
                i += 1
                if i >= n:
                    raise QuoteError(f"missing escaped character at end: {text}")
                if escapes:
                    decoded, i = _unescape(text, i)
                    out.append(decoded)
                else:
                    out.append("\\" + text[i])
                    i += 1
            elif quote:
                if c == quote:
                    quote = ""
                else:
                    out.append(c)
                i += 1
            elif c in "'\"":
                quote = c
                i += 1
            elif c in _WHITE:
                break
            else:
                out.append(c)
                i += 1
        if quote:
            raise QuoteError(f"missing terminating {quote}: {text}")
        words.append("".join(out))


def _unescape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape whose letter is at text[i]; return it and the next index."""
    c = text[i]
    hexdigits = "0123456789abcdefABCDEF"
    if c == "x" and i + 1 < len(text) and text[i + 1] in hexdigits:
        j = i + 1
        while j < len(text) and j < i + 3 and text[j] in hexdigits:
            j += 1
        return chr(int(text[i + 1 : j], 16)), j
    if c == "c" and i + 1 < len(text):
        return chr(ord(text[i + 1]) & 0x1F), i + 2
    if "0" <= c <= "7":
        j = i
        while j < len(text) and j < i + 3 and "0" <= text[j] <= "7":
            j += 1
        return chr(int(text[i:j], 8) & 0xFF), j
    return _ESCAPES.get(c, c), i + 1


def decomment(line: str) -> tuple[str, bool]:
    """Strip a comment; returns (text, unterminated_quote).

    As keepalived: `!` and `#` outside double quotes start a comment, a backslash before
    them makes them literal. (keepalived joins `\\`-continued lines only inside `$NAME=`
    definitions, which hakeeper does not support, so a trailing backslash stays a character.)"""
    out: list[str] = []
    quote = False
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == '"':
            quote = not quote
        elif c == "\\":
            if i + 1 >= n:
                out.append(c)
                break
            if not quote and line[i + 1] in "#!":
                out.append(line[i + 1])
            else:
                out.append(line[i : i + 2])
            i += 2
            continue
        elif not quote and c in "#!":
            break
        out.append(c)
        i += 1
    return "".join(out).strip(), quote


def _brace_split(text: str) -> Iterator[str]:
    """Cut a line at `{` and `}` outside double quotes, yielding the pieces and the braces."""
    start, quote = 0, False
    for i, c in enumerate(text):
        if c == '"':
            quote = not quote
        elif c in "{}" and not quote:
            if text[start:i].strip():
                yield text[start:i].strip()
            yield c
            start = i + 1
    if text[start:].strip():
        yield text[start:].strip()


@dataclass
class _Item:
    kind: str  # "stmt", "{" or "}"
    origin: Origin
    node: Node | None = None


class _Reader:
    def __init__(self) -> None:
        self.errors: list[ConfigError] = []
        self.warnings: list[Warning_] = []

    def items(self, text: str, filename: str, depth: int = 0) -> Iterator[_Item]:
        lines = text.splitlines()
        for number, raw in enumerate(lines, 1):
            origin = Origin(filename, number)
            line, open_quote = decomment(raw)
            if open_quote:
                self.errors.append(ConfigError(origin, "unterminated quote"))
                continue
            for piece in _brace_split(line):
                if piece in "{}":
                    yield _Item(piece, origin)
                    continue
                node = self._statement(piece, origin)
                if node is None:
                    continue
                if node.keyword == "include":
                    yield from self._include(node, filename, depth)
                else:
                    yield _Item("stmt", origin, node)

    def _statement(self, text: str, origin: Origin) -> Node | None:
        try:
            words = split_words(text)
            node = Node(words[0], words[1:], origin)
            if node.keyword in SCRIPT_KEYWORDS:
                qwords = split_quoted(text, escapes=False)
                if len(qwords) > 1:
                    node.argv = tuple(split_quoted(qwords[1], escapes=True))
                node.extra = qwords[2:]
        except QuoteError as e:
            self.errors.append(ConfigError(origin, str(e)))
            return None
        return node

    def _include(self, node: Node, filename: str, depth: int) -> Iterator[_Item]:
        if len(node.args) != 1:
            self.errors.append(ConfigError(node.origin, "include needs one file name or glob"))
            return
        if depth >= _MAX_INCLUDE_DEPTH:
            self.errors.append(ConfigError(node.origin, "include nested too deep (a loop?)"))
            return
        pattern = os.path.join(os.path.dirname(filename), node.args[0])
        paths = sorted(glob.glob(pattern))
        if not paths:
            if glob.has_magic(pattern):  # keepalived only warns when a glob matches nothing
                self.warnings.append(Warning_(node.origin, f"include {node.args[0]}: no match"))
            else:
                self.errors.append(
                    ConfigError(node.origin, f"include {node.args[0]}: no such file")
                )
            return
        for path in paths:
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                self.errors.append(ConfigError(node.origin, f"cannot read include {path}: {e}"))
                continue
            yield from self.items(text, path, depth + 1)

    def tree(self, text: str, filename: str) -> list[Node]:
        """Nest statements under the `{ }` that follow them (same line or later)."""
        root: list[Node] = []
        stack: list[tuple[list[Node], Node | None]] = [(root, None)]
        last: Node | None = None
        for item in self.items(text, filename):
            if item.kind == "stmt":
                assert item.node is not None
                stack[-1][0].append(item.node)
                last = item.node
            elif item.kind == "{":
                if last is None or last.children is not None:
                    self.errors.append(ConfigError(item.origin, "'{' without a keyword before it"))
                    last = Node("", [], item.origin)  # absorb the block so nesting stays right
                last.children = []
                stack.append((last.children, last))
                last = None
            else:
                if len(stack) == 1:
                    self.errors.append(ConfigError(item.origin, "extra '}'"))
                else:
                    stack.pop()
                last = None
        for _, owner in stack[1:]:
            assert owner is not None
            self.errors.append(
                ConfigError(owner.origin, f"missing '}}' for the block of '{owner.keyword}'")
            )
        return root


def parse_keepalived_text(text: str, filename: str = "keepalived.conf") -> Config:
    """Parse keepalived.conf text; includes are relative to `filename`'s directory."""
    reader = _Reader()
    nodes = reader.tree(text, filename)
    return build_config(nodes, filename, reader.errors, reader.warnings)


def load_keepalived(path: str) -> Config:
    """Read a keepalived.conf file; raises ConfigErrors listing every problem."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigErrors([ConfigError(Origin(path, 0), f"cannot read: {e}")]) from e
    return parse_keepalived_text(text, path)
