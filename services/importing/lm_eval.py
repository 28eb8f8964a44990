"""`knobs import lm-eval`: lm-evaluation-harness result files become runs and scores.

One results file is one run (a model at a revision, evaluated on some tasks). Both layouts
are read: 0.4.x (`results_<date>.json`, metric keys `acc,none` / `acc_stderr,none`, with
`n-samples`, `n-shot`, `config.model_args`, `lm_eval_version`, `git_hash`, `date`) and the
older one the Pythia suite's released evaluations use (`acc` / `acc_stderr`,
`config.num_fewshot`). Scores are named `task/metric` (`lambada_openai/acc`), with the
filter appended when it is not `none` (`gsm8k/exact_match,strict-match`).

The knobs of a run: `model` is the model's name with its size replaced by `{size}`
(`EleutherAI/pythia-{size}`), so the runs of a suite differ in `model_size` alone and a
one-at-a-time analysis can compare them; `model_size` is the nominal size the name states
(`pythia-160m` -> 160000000); `step` (from a `stepN` revision) or `revision`; `dtype`;
`num_fewshot` when every task used the same; the other model arguments that change results
(`peft`, `load_in_8bit`, ...); then `--param` overrides. The exact parameter count the
harness measured (`config.model_num_parameters`), or else the nominal size, is also a cost
(`params_total`, with the weight bytes at each precision as trained runs record them).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from events.models import JSONScalar
from services.core.context import Context
from services.core.errors import BadInput
from services.importing.batch import (
    ImportOutcome,
    ImportPlan,
    ParsedRun,
    Source,
    append_plan,
    finite_number,
    param_value,
    plan_events,
    refuse,
)

RESULTS_GLOB = "results*.json"
NON_METRIC_KEYS = frozenset({"alias", "name", "sample_len", "samples", "sample_count"})
# Model arguments that say how to load or run the model, not what is evaluated.
OPERATIONAL_ARGS = frozenset({
    "pretrained", "revision", "dtype", "trust_remote_code", "parallelize", "device", "device_map",
    "device_map_option", "max_memory_per_gpu", "max_cpu_memory", "offload_folder", "cache_dir",
    "use_accelerate", "batch_size", "max_batch_size", "token", "use_fast_tokenizer", "low_cpu_mem_usage",
    "tokenizer", "backend", "logits_cache", "gpus", "tensor_parallel_size", "data_parallel_size",
    "gpu_memory_utilization",
})
# The same cost kinds as a trained run records (workers/jobs/cost.py), so "effect per byte
# of weights" compares imported and trained runs.
BYTES_PER_PARAM: dict[str, float] = {"fp32": 4, "bf16": 2, "int8": 1, "int4": 0.5}
SIZE = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)([kKmMbBtT])(?![A-Za-z0-9])")
MULTIPLIER = {"k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}
STEP = re.compile(r"^step(\d+)$")


@dataclass(frozen=True)
class ModelSize:
    value: int | float
    family: str
    """The model's name with the size replaced by `{size}`: what stays equal across a suite."""


def parse_model_size(name: str) -> ModelSize | None:
    """The nominal size a model's name states: `pythia-160m` -> 1.6e8, `Llama-2-70b-hf` -> 7e10.

    Only the last path component is read, and only a number followed by k/M/B/T standing
    alone between separators, so `pythia-v1.1-160m` is 160M and `gpt2` has no size.
    """
    head, slash, base = name.rpartition("/")
    match = SIZE.search(base)
    if match is None:
        return None
    exact = Decimal(match.group(1)) * MULTIPLIER[match.group(2).lower()]
    value: int | float = int(exact) if exact == exact.to_integral_value() else float(exact)
    family = base[: match.start()] + "{size}" + base[match.end():]
    return ModelSize(value, head + slash + family)


def parse_model_args(raw: Any) -> dict[str, str]:
    """`pretrained=X,revision=Y,dtype=Z` (or the dict newer harness versions write) as a dict."""
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items() if v is not None}
    out: dict[str, str] = {}
    for part in str(raw or "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def sanitise(text: str) -> str:
    """A run id from a model name: `/` as `__` (the harness's own folder naming), no odd characters."""
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", text.replace("/", "__")).strip("_") or "run"


def results_files(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """The files to read, in order: each file named, and each results*.json under each folder."""
    files: list[Path] = []
    errors: list[str] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob(RESULTS_GLOB) if p.is_file())
            if not found:
                errors.append(f"{path}: no {RESULTS_GLOB} file under this folder; "
                              "name the result files themselves if they are called otherwise")
        elif path.is_file():
            found = [path]
        else:
            errors.append(f"{path}: no such file or folder")
            found = []
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(file)
    return files, errors


def plan_lm_eval(
    paths: Sequence[Path], experiment: str, overrides: Mapping[str, JSONScalar] | None = None
) -> ImportPlan:
    """Read and check every file, then plan one run per file; BadInput lists every problem."""
    if not paths:
        raise BadInput("name at least one lm-evaluation-harness results file or folder")
    files, errors = results_files(paths)
    runs: list[ParsedRun] = []
    sources: dict[str, Source] = {}
    notes: list[str] = []
    origin_of: dict[str, Path] = {}
    for index, file in enumerate(files, start=1):
        parsed = _parse_file(file, index, dict(overrides or {}), errors, notes)
        if parsed is None:
            continue
        run, source = parsed
        if run.run_id in origin_of:
            errors.append(f"{file}: describes run {run.run_id!r} (same model, revision and shots) like "
                          f"{origin_of[run.run_id]}; import them into different experiments, or drop one")
            continue
        origin_of[run.run_id] = file
        runs.append(run)
        sources[run.run_id] = source
    place = str(paths[0]) if len(paths) == 1 else f"lm-eval import of {len(files)} files"
    refuse(place, errors)
    return plan_events(experiment, "lm-eval", runs, sources, notes=notes)


def import_lm_eval(
    ctx: Context, paths: Sequence[Path], experiment: str, overrides: Mapping[str, JSONScalar] | None = None
) -> ImportOutcome:
    """Import lm-evaluation-harness results files (or folders of them) into the log, all or nothing."""
    return append_plan(ctx, plan_lm_eval(paths, experiment, overrides))


def _parse_file(
    file: Path, index: int, overrides: dict[str, JSONScalar], errors: list[str], notes: list[str]
) -> tuple[ParsedRun, Source] | None:
    loaded = _load(file, errors)
    if loaded is None:
        return None
    data, sha256 = loaded
    results = data.get("results")
    if not isinstance(results, dict) or not results:
        errors.append(f"{file}: no `results` object with tasks in it; is this an lm-evaluation-harness "
                      "results file (results_<date>.json)? samples_*.jsonl files hold no scores")
        return None
    raw_config = data.get("config")
    config: dict[str, Any] = raw_config if isinstance(raw_config, dict) else {}
    args = parse_model_args(config.get("model_args"))
    model = (args.get("pretrained") or _text(data.get("model_name")) or args.get("model")
             or args.get("path") or file.stem)
    revision = args.get("revision") or _revision(config.get("model_revision"))
    fewshot = _fewshot(data, config)

    run = ParsedRun(line=index, run_id=_run_id(model, revision, fewshot))
    size = parse_model_size(model)
    run.params["model"] = size.family if size else model
    if size is not None:
        run.params["model_size"] = size.value
    else:
        notes.append(f"{file.name}: no size in the model name {model!r}, so no model_size parameter "
                     "(give one with --param model_size=...)")
    if revision:
        step = STEP.match(revision)
        run.params["step" if step else "revision"] = int(step.group(1)) if step else revision
    dtype = args.get("dtype") or _dtype(config.get("model_dtype"))
    if dtype:
        run.params["dtype"] = dtype
    if fewshot is not None:
        run.params["num_fewshot"] = fewshot
    elif isinstance(data.get("n-shot"), dict):
        notes.append(f"{file.name}: tasks were run with different numbers of shots; "
                     "no num_fewshot parameter recorded")
    for key, raw in sorted(args.items()):
        value = param_value(raw)
        if key not in OPERATIONAL_ARGS and value is not None:
            run.params[key] = value
    run.params.update(overrides)

    counted = finite_number(config.get("model_num_parameters"))
    total = counted if counted is not None and counted > 0 else (float(size.value) if size else None)
    if total is not None:
        run.costs["params_total"] = total
        run.costs.update({f"bytes_{p}": b * total for p, b in BYTES_PER_PARAM.items()})

    before = len(errors)
    _scores(file, results, data.get("n-samples"), run, errors, notes)
    if len(errors) == before and not run.scores:
        errors.append(f"{file}: no numeric metric under `results`; nothing to import from it")
    if len(errors) > before:
        return None
    return run, Source(f"src-lmeval-{sha256[:16]}", _citation(file, data, model, revision, sha256))


def _load(file: Path, errors: list[str]) -> tuple[dict[str, Any], str] | None:
    """The file's JSON object and the sha256 of its bytes (the source's identity)."""
    raw = file.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        errors.append(f"{file}: not UTF-8 text ({exc})")
        return None
    except json.JSONDecodeError as exc:
        errors.append(f"{file}: line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})")
        return None
    if not isinstance(data, dict):
        errors.append(f"{file}: the top level must be a JSON object with a `results` key")
        return None
    return data, hashlib.sha256(raw).hexdigest()


def _scores(
    file: Path, results: dict[str, Any], samples: Any, run: ParsedRun, errors: list[str], notes: list[str]
) -> None:
    samples = samples if isinstance(samples, dict) else {}
    for task in sorted(results):
        metrics = results[task]
        if not isinstance(metrics, dict):
            errors.append(f"{file}: results.{task} must be an object of metrics")
            continue
        n = _effective(samples.get(task))
        for key, raw in metrics.items():
            name, sep, filt = key.partition(",")
            if key in NON_METRIC_KEYS or name.endswith("_stderr") or isinstance(raw, bool):
                continue
            if not isinstance(raw, int | float):
                continue  # strings and lists beside the metrics (aliases, names) carry no score
            benchmark = f"{task}/{name}" if filt in ("", "none") else f"{task}/{name},{filt}"
            if not math.isfinite(raw):
                notes.append(f"{file.name}: {task} {key} is {raw}; that score is left out")
                continue
            run.scores[benchmark] = float(raw)
            stderr = finite_number(metrics.get(f"{name}_stderr{sep}{filt}"))  # "N/A" -> None
            if stderr is not None and stderr >= 0:
                run.stderrs[benchmark] = stderr
            if n is not None:
                run.ns[benchmark] = n


def _effective(counts: Any) -> int | None:
    if not isinstance(counts, dict):
        return None
    n = finite_number(counts.get("effective"))
    return int(n) if n is not None and n.is_integer() and n >= 1 else None


def _fewshot(data: dict[str, Any], config: dict[str, Any]) -> int | None:
    """The number of shots if every task used the same (0.4.x `n-shot`, else `config.num_fewshot`)."""
    shots = data.get("n-shot")
    if isinstance(shots, dict) and shots:
        values = {int(v) for v in shots.values() if isinstance(v, int) and not isinstance(v, bool)}
        return values.pop() if len(values) == 1 else None
    raw = config.get("num_fewshot")
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def _run_id(model: str, revision: str | None, fewshot: int | None) -> str:
    run_id = sanitise(model) + (f"@{sanitise(revision)}" if revision else "")
    return run_id + (f"-{fewshot}shot" if fewshot else "")


def _revision(raw: Any) -> str | None:
    text = _text(raw)
    return text if text and text != "main" else None


def _dtype(raw: Any) -> str | None:
    text = _text(raw)
    return text.removeprefix("torch.") if text else None


def _text(raw: Any) -> str | None:
    return (raw.strip() or None) if isinstance(raw, str) else None


def _citation(file: Path, data: dict[str, Any], model: str, revision: str | None, sha256: str) -> str:
    parts = [f"model {model}" + (f" at {revision}" if revision else "")]
    if version := _text(data.get("lm_eval_version")):
        parts.append(f"lm_eval {version}")
    if git := _text(data.get("git_hash")):
        parts.append(f"git {git}")
    date = data.get("date")
    if isinstance(date, int | float) and not isinstance(date, bool) and math.isfinite(date):
        parts.append(datetime.fromtimestamp(date, UTC).strftime("%Y-%m-%d %H:%M UTC"))
    elif text := _text(date):
        parts.append(text)
    parts.append(f"sha256 {sha256[:12]}")
    return f"lm-evaluation-harness results {file.name} ({', '.join(parts)})"
