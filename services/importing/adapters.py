"""What the adapters that read other tools share: typing their values, counting what they skip, URLs.

lm-evaluation-harness files, MLflow runs and Optuna trials become `ParsedRun`s that
`services.importing.batch` turns into one batch of events, as `knobs import results` does.
The helpers here keep the three readers saying the same thing in the same words: a seed,
a `cost.*` value or a score that cannot be read; what was found but not imported; a
password in a URL; a SQLite file that does not exist (the trackers would create it).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from events.models import JSONScalar
from services.core.errors import Unavailable
from services.importing.batch import ParsedRun, finite_number, integer_seed, param_value, refuse

INSTALL_HINT = "pip install '.[adapters]'"
COST_PREFIX = "cost."
T = TypeVar("T")


def parse_assignments(pairs: Iterable[str], option: str = "--param") -> dict[str, JSONScalar]:
    """`KEY=VALUE` strings as parameters; values typed as a CSV cell would be (int, float, bool, str)."""
    out: dict[str, JSONScalar] = {}
    errors: list[str] = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        value = param_value(raw)
        if not sep or not key.strip() or value is None:
            errors.append(f"{option} {pair!r} must be KEY=VALUE with a non-empty key and value")
        else:
            out[key.strip()] = value
    refuse(option, errors)
    return out


def only_done(
    items: Iterable[T], state_of: Callable[[T], str], done: str, what: str, notes: list[str]
) -> tuple[list[T], int]:
    """The items in state `done`, and how many were not; those are counted by state in a note
    put first (`what` names them: "run(s) not finished"), so a crashed run is not lost silently."""
    kept: list[T] = []
    left: Counter[str] = Counter()
    for item in items:
        state = state_of(item)
        if state == done:
            kept.append(item)
        else:
            left[state] += 1
    skipped = sum(left.values())
    if skipped:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(left.items()))
        notes.insert(0, f"{skipped} {what}, not imported: {counts}")
    return kept, skipped


def set_seed(run: ParsedRun, raw: Any, where: str, errors: list[str]) -> None:
    """The run's seed from a tracker's value; `where` names it in the error (`run X: seed`)."""
    run.seed = integer_seed(raw)
    if run.seed is None:
        errors.append(f"{where} {raw!r} is not an integer")


def is_cost(key: str) -> bool:
    return key.startswith(COST_PREFIX) and len(key) > len(COST_PREFIX)


def add_cost(run: ParsedRun, key: str, raw: Any, where: str, errors: list[str]) -> None:
    """`cost.<kind>` as the run's cost of that kind; it must be a finite, non-negative number."""
    value = finite_number(raw)
    if value is None or value < 0:
        errors.append(f"{where} {raw!r} is not a finite, non-negative number")
    else:
        run.costs[key.removeprefix(COST_PREFIX)] = value


def add_score(run: ParsedRun, benchmark: str, raw: Any, where: str, notes: list[str]) -> None:
    """A score, or a note that it was left out (NaN and infinities are what trackers log on divergence)."""
    value = finite_number(raw)
    if value is None:
        notes.append(f"{where} is {raw}; that score is left out")
    else:
        run.scores[benchmark] = value


def redact_url(url: str) -> str:
    """The URL without its password, fit for a citation or an error message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def scrub(message: str, url: str) -> str:
    """An error message with the URL's password, if any, replaced."""
    password = urlsplit(url).password if "://" in url else None
    return message.replace(password, "***") if password else message


def missing_sqlite_file(url: str) -> bool:
    """A `sqlite:///path` URL whose file does not exist (the tracker would create an empty one)."""
    db = url.split(":///", 1)[1] if ":///" in url else ""
    return bool(db) and db != ":memory:" and not Path(db).is_file()


def is_url(text: str) -> bool:
    """`scheme://...` or `file:...`; anything else is read as a path."""
    has_scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text) is not None
    return has_scheme and ("://" in text or text.startswith("file:"))


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block, then put them back."""
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def missing_package(package: str, what: str) -> Unavailable:
    return Unavailable(f"{what} needs the `{package}` package, which is not installed: run `{INSTALL_HINT}`")
