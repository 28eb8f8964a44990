"""Hostile input files for the parsers' fuzz tests (hypothesis strategies).

`hostile_files(examples, dump)` draws files of three kinds: near-valid mutations of real
examples, made on the parsed structure (a field dropped, renamed or duplicated, a value of the
wrong type, NaN, inf, a huge number, odd unicode) and on the bytes (BOM, CRLF, truncated, a line
dropped or repeated, invalid UTF-8, garbage spliced in); random text; and random bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import strategies as st

Draw = Callable[[st.SearchStrategy[Any]], Any]

ODD_TEXT = st.sampled_from(["", " ", "\x00", "\ud800", "é\u0301", "\u202e", "日本", "a" * 10_000, "\n",
                            "{x}", "${HOME}", "null", "1e999", "NaN", "-0", "~", "&a", "*a", "!!python/none"])
HUGE = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**40, 1e308, -1e308, 5e-324])
ODD_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), HUGE, st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), ODD_TEXT, st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
BAD_UTF8 = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"]  # stray, cut, a surrogate, lone tails
NUMBERS_IN_TEXT = [b"NaN", b"nan", b"inf", b"-inf", b".inf", b"1e999", b"99999999999999999999999", b"-0",
                   b"0x1F", b"1_000", b""]


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into nested dicts and lists, the root first."""
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            found += _paths(value, (*prefix, i))
    return found


def _at(tree: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


@st.composite
def mutated_tree(draw: Draw, tree: Any) -> Any:
    """A copy of `tree` with one to three things wrong in it."""
    import copy

    tree = copy.deepcopy(tree)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(tree)
        path = draw(st.sampled_from(paths))
        if not path:
            tree = draw(st.one_of(ODD_VALUES, st.just([tree]), st.just({"extra": tree})))
            continue
        parent, key = _at(tree, path[:-1]), path[-1]
        op = draw(st.sampled_from(["drop", "replace", "rename", "wrap"]))
        if op == "drop":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(ODD_VALUES)
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(ODD_TEXT | st.text(max_size=8))] = parent.pop(key)
        else:
            parent[key] = [parent[key]]
    return tree


@st.composite
def mutated_bytes(draw: Draw, data: bytes) -> bytes:
    """`data` with one to three byte-level injuries."""
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["bom", "crlf", "truncate", "drop_line", "repeat_line", "bad_utf8",
                                   "splice", "number", "nul"]))
        lines = data.split(b"\n")
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if op == "bom":
            data = b"\xef\xbb\xbf" + data
        elif op == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif op == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif op == "drop_line" and lines:
            data = b"\n".join(lines[:i] + lines[i + 1:])
        elif op == "repeat_line" and lines:  # duplicate keys in YAML, duplicate rows in tables
            data = b"\n".join(lines[: i + 1] + lines[i:])
        elif op == "bad_utf8":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.sampled_from(BAD_UTF8)) + data[at:]
        elif op == "splice":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        elif op == "number":
            digits = [j for j, c in enumerate(data) if chr(c).isdigit()]
            if digits:
                j = draw(st.sampled_from(digits))
                data = data[:j] + draw(st.sampled_from(NUMBERS_IN_TEXT)) + data[j + 1:]
        else:
            at = draw(st.integers(0, len(data)))
            data = data[:at] + b"\x00" + data[at:]
    return data


def hostile_files(examples: list[bytes], load: Callable[[bytes], Any],
                  dump: Callable[[Any], bytes]) -> st.SearchStrategy[bytes]:
    """Files to feed a parser: `examples` are valid files, `load`/`dump` turn one into its
    structure and back (so that a field can be dropped or given a wrong value)."""
    trees = [load(e) for e in examples]
    structural = st.sampled_from(trees).flatmap(mutated_tree).map(dump)
    byte_level = st.sampled_from(examples).flatmap(mutated_bytes)
    return st.one_of(
        structural, byte_level, structural.flatmap(mutated_bytes), st.sampled_from(examples),
        st.just(b""), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=200),
    )


def jsonl_load(data: bytes) -> list[Any]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def jsonl_dump(tree: Any) -> bytes:
    """One JSON document a line (a tree that is no longer a list is one line); lone surrogates kept."""
    rows = tree if isinstance(tree, list) else [tree]
    return "\n".join(json.dumps(row, default=str) for row in rows).encode("utf-8", "surrogatepass")


def yaml_dump(tree: Any) -> bytes:
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True).encode("utf-8", "surrogatepass")
