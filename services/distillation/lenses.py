"""Lenses as data: the builtin YAML files and the user's directories, validated, versioned, selected.

A lens file is one YAML mapping, the fields of `events.models.distillation.Lens`; its file stem
is its name. The version is the sha256 of the parsed content (`lens_version`), so comments,
key order and YAML style never change it, and any edit to a field does. Directories are read
in order — builtin, `$KNOBS_HOME/lenses` (when it exists), `KNOBS_LENS_DIRS`, then the
directories a caller names — and a lens from a later directory replaces one of the same name
from an earlier one (`LoadedLens.overrides` says whose).
"""

from __future__ import annotations

import difflib
import os
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from events.models.distillation import Lens
from events.settings import knobs_home
from services.core.errors import BadInput

BUILTIN_DIR = Path(__file__).resolve().parent / "lenses"
BUILTIN = "builtin"
PLACEHOLDERS = ("question", "answer", "context")
SUFFIXES = (".yaml", ".yml")
ENV_DIRS = "KNOBS_LENS_DIRS"


class LensError(BadInput):
    """A lens file, lens directory or lens selection cannot be used; nothing was logged."""


@dataclass(frozen=True)
class LoadedLens:
    """A lens and where it came from: 'builtin' or the path of the user's file."""

    lens: Lens
    origin: str
    overrides: str = ""  # the origin of the lens of the same name this one replaced

    @property
    def version(self) -> str:
        return self.lens.version


def load_lens_file(path: Path) -> Lens:
    """One lens file, validated; every error names the file and, where one is at fault, the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LensError(f"{path}: no such lens file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LensError(f"{path}: cannot read the lens file ({exc})") from exc
    except yaml.YAMLError as exc:
        raise LensError(f"{path}: not YAML ({_one_line(exc)})") from exc
    except (ValueError, OverflowError) as exc:  # PyYAML's own crash on an escape like "\U99999999"
        raise LensError(f"{path}: not YAML (an escape names no character: {exc})") from exc
    if not isinstance(raw, dict):
        found = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise LensError(f"{path}: a lens file is one YAML mapping (name, family, description, "
                        f"template, ...), not {found}")
    try:
        lens = Lens.model_validate(raw)
    except ValidationError as exc:
        raise LensError(f"{path}: {_first_error(exc)}") from exc
    if lens.name != path.stem:
        raise LensError(f"{path}: field `name` is {lens.name!r} but the file is named {path.name!r}; "
                        f"a lens file is named after its lens ({lens.name}{path.suffix})")
    _check_template(path, lens)
    if lens.keeps.min_chars > lens.keeps.max_chars:
        raise LensError(f"{path}: field `keeps.min_chars` ({lens.keeps.min_chars}) exceeds "
                        f"`keeps.max_chars` ({lens.keeps.max_chars})")
    return lens


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"]) or "(the mapping)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(Lens.model_fields)
        return f"field `{loc}` is not a lens field (allowed: {allowed}){more}"
    return f"field `{loc}`: {first['msg']}{more}"


def _check_template(path: Path, lens: Lens) -> None:
    """The template is filled with str.format(question=..., answer=..., context=...), so every
    field it names must be one of those three; literal braces are written {{ and }}."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(lens.template) if name is not None]
    except ValueError as exc:
        raise LensError(f"{path}: field `template`: {exc}; write literal braces as {{{{ and }}}}") from exc
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        shown = ", ".join("{" + f + "}" for f in unknown)
        raise LensError(f"{path}: field `template`: unknown placeholder {shown}; a template may use "
                        "{question}, {answer} and {context} (literal braces: {{ and }})")
    if "question" not in fields and "answer" not in fields:
        raise LensError(f"{path}: field `template` names neither {{question}} nor {{answer}}: every "
                        "output would be the same whatever the pair")
    quoted = [p for p in PLACEHOLDERS if "{" + p + "}" in lens.system]
    if quoted:
        raise LensError(f"{path}: field `system` is sent as written, but it has {{{quoted[0]}}}; "
                        "placeholders belong in `template`")


def lens_files(directory: Path) -> list[Path]:
    """The lens files of one directory (not its subdirectories), by name; other files are ignored."""
    if not directory.is_dir():
        raise LensError(f"{directory}: no such lens directory")
    files = sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise LensError(f"{directory}: two files for lens {path.stem!r} ({stems[path.stem].name}, "
                            f"{path.name}); keep one")
        stems[path.stem] = path
    return files


def user_dirs(dirs: Sequence[Path] = ()) -> list[Path]:
    """The user's lens directories, in the order they override: $KNOBS_HOME/lenses when it
    exists, then KNOBS_LENS_DIRS (os.pathsep-separated), then `dirs`. A named directory that
    does not exist is an error: a misspelt one must not silently fall back to the builtins."""
    found: list[Path] = []
    home = knobs_home() / "lenses"
    if home.is_dir():
        found.append(home)
    for entry in os.environ.get(ENV_DIRS, "").split(os.pathsep):
        if entry.strip():
            path = Path(entry.strip())
            if not path.is_dir():
                raise LensError(f"{ENV_DIRS}: {path} is not a directory; fix or unset {ENV_DIRS}")
            found.append(path)
    for path in dirs:
        if not Path(path).is_dir():
            raise LensError(f"--lens-dir {path}: no such directory")
        found.append(Path(path))
    unique: list[Path] = []
    for path in found:
        if path.resolve() not in {u.resolve() for u in unique}:
            unique.append(path)
    return unique


def load_lenses(dirs: Sequence[Path] = ()) -> dict[str, LoadedLens]:
    """Every lens by name: the builtins, then the user's directories (user_dirs), later ones
    replacing earlier lenses of the same name. One bad file fails the whole load: a distillation
    must not quietly run without a lens the user wrote."""
    loaded = {p.stem: LoadedLens(load_lens_file(p), BUILTIN) for p in lens_files(BUILTIN_DIR)}
    for directory in user_dirs(dirs):
        for path in lens_files(directory):
            lens = load_lens_file(path)
            before = loaded.get(lens.name)
            loaded[lens.name] = LoadedLens(lens, str(path), overrides=before.origin if before else "")
    return loaded


def families(lenses: Iterable[LoadedLens]) -> list[str]:
    return sorted({item.lens.family for item in lenses})


def select_lenses(spec: str, lenses: dict[str, LoadedLens] | None = None,
                  dirs: Sequence[Path] = ()) -> list[LoadedLens]:
    """The lenses a `--lenses` value names, in its order, each once: comma-separated names,
    `all` (every lens, by name) and `family:F` (every lens of family F, by name), mixed freely."""
    lenses = load_lenses(dirs) if lenses is None else lenses
    terms = [term.strip() for term in spec.split(",") if term.strip()]
    if not terms:
        raise LensError("--lenses is empty: name lenses (A,B,...), a family (family:causal) or `all`; "
                        "`knobs lenses list` shows them")
    chosen: dict[str, LoadedLens] = {}
    for term in terms:
        for item in _expand(term, lenses):
            chosen.setdefault(item.lens.name, item)
    return list(chosen.values())


def _expand(term: str, lenses: dict[str, LoadedLens]) -> list[LoadedLens]:
    if term == "all":
        return [lenses[name] for name in sorted(lenses)]
    if term.startswith("family:"):
        family = term.removeprefix("family:")
        members = [lenses[n] for n in sorted(lenses) if lenses[n].lens.family == family]
        if not members:
            known = families(lenses.values())
            close = difflib.get_close_matches(family, known, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise LensError(f"no lens of family {family!r}: {hint}families: {', '.join(known)}")
        return members
    return [lens_named(term, lenses)]


def lens_named(name: str, lenses: dict[str, LoadedLens]) -> LoadedLens:
    """One lens by name; an unknown name is an error with the close matches."""
    if name in lenses:
        return lenses[name]
    close = difflib.get_close_matches(name, list(lenses), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise LensError(f"unknown lens {name!r}: {hint}`knobs lenses list` shows the {len(lenses)} lenses "
                    "(a user lens goes in $KNOBS_HOME/lenses or --lens-dir)")


@dataclass(frozen=True)
class Checked:
    """One file's verdict from `check_paths`: its lens, or the one line saying what is wrong."""

    path: Path
    lens: Lens | None
    error: str = ""


def check_paths(paths: Sequence[Path]) -> list[Checked]:
    """Validate lens files and directories of them, one verdict per file; never raises for a bad
    file (that is the verdict), only reports a path that is neither a file nor a directory."""
    checked: list[Checked] = []
    for path in paths:
        if path.is_dir():
            try:
                files = lens_files(path)
            except LensError as exc:
                checked.append(Checked(path, None, str(exc)))
                continue
            if not files:
                checked.append(Checked(path, None, f"{path}: no lens files (*.yaml, *.yml) here"))
            targets = files
        elif path.exists():
            targets = [path]
        else:
            checked.append(Checked(path, None, f"{path}: no such file or directory"))
            continue
        for target in targets:
            try:
                checked.append(Checked(target, load_lens_file(target)))
            except LensError as exc:
                checked.append(Checked(target, None, str(exc)))
    return checked


def lens_public(item: LoadedLens) -> dict[str, Any]:
    """The full lens, its version and origin, as JSON-ready data."""
    return {"name": item.lens.name, "version": item.version, "origin": item.origin,
            "overrides": item.overrides or None, "lens": item.lens.model_dump(mode="json")}


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
