"""Distillation benchmark: knobs' LLM client and `knobs distill` pipeline against a plain
sequential loop of `openai` calls on the same local server, a fully cached rerun, and embedding
+ duplicate detection at 10,000 distillates against plain sentence-transformers and a naive
all-pairs loop.

    python -m bench.distill [--quick] [--json OUT] [--base-url URL --api-key KEY --model M]

- Server: llama-cpp-python serving SmolLM2-135M-Instruct (services/infra/llm.py `start_llm`,
  started in the working directory and stopped at the end), or the server `--base-url` names.
  It answers one request at a time; on a 2-core machine it runs one thread (`default_threads`).
- Workload (the LLM sides): the first `--pairs` biography pairs (default 6), through the builtin
  lenses restate, child and summary with `max_tokens` capped at `--max-tokens` (default 48),
  `--samples` samples each (default 2): 36 distillates. Every LLM side makes exactly these calls,
  with the same messages, sampling and seed (the seed knobs derives from each call's cache key,
  so both sides sample the same tokens where the server honours seeds; llama.cpp does).
- plain loop: what a user writes without knobs: `openai.OpenAI(...)`, then a sequential `for`
  over pairs, lenses and samples of `client.chat.completions.create(...)`, the lens template
  filled by `str.format`; no cache, no log, no checks.
- knobs client (workers/jobs/distill.py `complete_all`) at concurrency 1, 2 and 4, each with an
  empty response cache of its own: the async client, retries, every answer written to the cache.
- knobs pipeline, cold: what `knobs distill` runs, in this process, in a fresh KNOBS_HOME (empty
  log, empty response and embedding caches), concurrency 4 (the default): the server checked
  (`GET /models`), the request and lens versions appended, `run_distillation` on the embedded
  Dramatiq StubBroker — every answer appended as a DistillateGenerated, each pair's cloud judged
  (all-MiniLM-L6-v2 loaded, embeddings stored, checks, duplicates, diversity) and appended, then
  DistillationCompleted.
- knobs pipeline, fully cached rerun: the same request in the same KNOBS_HOME with a fresh log
  (KNOBS_EVENTS_SQLITE_PATH): every answer and embedding from the caches; it must send 0
  requests. A plain loop has no cache: its rerun costs its first run again.
- Embedding: `--texts` short distillates (default 10,000: the template engine's one-sentence
  rewrites of biography facts, two wordings per fact, and `--dup-rate` of them (default 0.1)
  replaced by a near-duplicate of an earlier text — a case, punctuation or filler edit —, seeded).
  Plain sentence-transformers `encode` (what a user calls), knobs `Embedder.embed` cold (encode +
  one content-addressed blob per text, fsynced) and warm (every vector from the cache).
- Dedup (first earlier text above `Checks().duplicate_cosine`, 0.95): knobs `dedup_matrix`
  (blocked matmul) on all texts, against the naive loop a user writes — for each text, each
  earlier one, `float(u[i] @ u[j]) > t`, stopping at the first hit — on the first `--naive-texts`
  (default 2,500) texts, timed, and extrapolated quadratically (by pairs) to all of them (say
  `--naive-texts 10000` to time it all). Both sides are also compared on that prefix directly,
  and must find the same duplicates.
- One run of each side, in this order, after one untimed warm-up request; no figure is asserted
  anywhere. The exit status is non-zero when a check fails (a side short of distillates, a log
  not complete, a rerun that sent a request, dedup results that differ).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import in_workdir, machine, table

LENSES = ("restate", "child", "summary")
FULL: dict[str, Any] = {"pairs": 6, "lenses": LENSES, "samples": 2, "max_tokens": 48,
                        "concurrency": (1, 2, 4), "texts": 10_000, "naive_texts": 2_500}
QUICK: dict[str, Any] = {"pairs": 2, "lenses": LENSES[:2], "samples": 1, "max_tokens": 16,
                         "concurrency": (1, 2), "texts": 400, "naive_texts": 300}
PIPELINE_CONCURRENCY = 4
"""`knobs distill`'s default (KNOBS_LLM_CONCURRENCY)."""


@dataclass
class Side:
    """One LLM side's figures."""

    name: str
    distillates: int
    seconds: float
    completion_tokens: int
    requests: int
    texts: dict[str, str] = field(default_factory=dict, repr=False)
    """(pair id/lens/sample) -> text, to compare the sides' answers."""
    note: str = ""

    @property
    def per_s(self) -> float:
        return self.distillates / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds


def triple(pair_id: str, lens: str, sample: int) -> str:
    return f"{pair_id}/{lens}/{sample}"


# --- the workload ----------------------------------------------------------------------------


def bench_lenses(names: Sequence[str], max_tokens: int) -> list[Any]:
    """The builtin lenses, `max_tokens` capped (a new content, so a new version, logged as such)."""
    from services.distillation.lenses import LoadedLens, select_lenses

    out = []
    for loaded in select_lenses(",".join(names)):
        lens = loaded.lens
        sampling = lens.sampling.model_copy(update={"max_tokens": min(max_tokens, lens.sampling.max_tokens)})
        out.append(LoadedLens(lens.model_copy(update={"sampling": sampling}),
                              origin=f"builtin, max_tokens {sampling.max_tokens} (bench.distill)"))
    return out


def pair_source(pairs: int) -> str:
    return f"biographies:people={-(-pairs // 6)}"  # six facts a person


# --- plain loop ------------------------------------------------------------------------------


def plain_loop(base_url: str, api_key: str, model: str, pairs: list[Any], lenses: list[Any],
               samples: int, seeds: dict[str, int]) -> Side:
    """A sequential `for` loop of `chat.completions.create`, as a user would write it."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key)
    texts: dict[str, str] = {}
    tokens = 0
    start = time.perf_counter()
    for pair in pairs:
        for loaded in lenses:
            lens = loaded.lens
            for sample in range(samples):
                messages = [{"role": "system", "content": lens.system}] if lens.system else []
                messages.append({"role": "user", "content": lens.template.format(
                    question=pair.question, answer=pair.answer, context=pair.context)})
                key = triple(pair.id, lens.name, sample)
                response = client.chat.completions.create(
                    model=model, messages=messages,  # type: ignore[arg-type]
                    temperature=lens.sampling.temperature, top_p=lens.sampling.top_p,
                    max_tokens=lens.sampling.max_tokens, seed=seeds[key])
                texts[key] = response.choices[0].message.content or ""
                tokens += response.usage.completion_tokens if response.usage else 0
    seconds = time.perf_counter() - start
    client.close()
    return Side("plain loop: openai chat.completions.create, sequential", len(texts), seconds, tokens,
                len(texts), texts, note="no cache, no log, no checks")


# --- knobs client ----------------------------------------------------------------------------


def knobs_client(base_url: str, api_key: str, model: str, pairs: list[Any], lenses: list[Any],
                 samples: int, concurrency: int, cache_dir: Path) -> Side:
    """`complete_all` with `concurrency` requests in flight and an empty cache of its own."""
    from workers.jobs.distill import (
        Answer,
        Call,
        ClientSettings,
        Endpoint,
        ResponseCache,
        call_for,
        complete_all,
    )

    named: dict[str, str] = {}
    calls: list[Call] = []
    for pair in pairs:
        for loaded in lenses:
            for sample in range(samples):
                call = call_for(model, loaded.lens, pair, sample)
                named[call.key] = triple(pair.id, loaded.lens.name, sample)
                calls.append(call)
    answers: dict[str, Answer] = {}

    def on_done(call: Call, answer: Answer) -> None:
        answers[call.key] = answer

    start = time.perf_counter()
    asyncio.run(complete_all(calls, Endpoint(base_url, api_key, model), ResponseCache(cache_dir),
                             ClientSettings(concurrency=concurrency), on_done))
    seconds = time.perf_counter() - start
    return Side(f"knobs client complete_all, concurrency {concurrency}", len(answers), seconds,
                sum(a.completion_tokens for a in answers.values()),
                sum(a.attempts for a in answers.values()),
                {named[k]: a.text for k, a in answers.items()},
                note=f"{sum(a.cached for a in answers.values())} cached; answers cached as they come")


# --- knobs pipeline --------------------------------------------------------------------------


def pipeline(home: Path, log: Path, base_url: str, api_key: str, model: str, source: str,
             limit: int, lenses: list[Any], samples: int, label: str) -> tuple[Side, dict[str, Any]]:
    """What `knobs distill` runs, in this process, under KNOBS_HOME=`home` with the log at `log`."""
    from events.settings import EventsSettings
    from events.store.factory import open_store
    from services.distillation.report import read_report
    from services.distillation.request import Endpoint, check_server, load_pairs, request, run
    from services.importing.adapters import environment

    env = {"KNOBS_HOME": str(home), "KNOBS_EVENTS_BACKEND": "sqlite", "KNOBS_EVENTS_SQLITE_PATH": str(log),
           "KNOBS_LLM_BASE_URL": base_url, "KNOBS_LLM_API_KEY": api_key, "KNOBS_LLM_MODEL": model,
           "KNOBS_LLM_CONCURRENCY": str(PIPELINE_CONCURRENCY)}
    progress_calls = 0

    def progress(done: int, total: int, usage: Any) -> None:
        nonlocal progress_calls
        progress_calls += 1

    with environment(**env):
        pair_set, pairs = load_pairs(source, limit)  # the same input as every side: not timed
        endpoint = Endpoint(base_url, model)
        with open_store(EventsSettings()) as store:
            start = time.perf_counter()
            check_server(endpoint)
            asked = request(store, pair_set, pairs, lenses, samples=samples, engine="llm", endpoint=endpoint)
            run(asked.request.distillation_id, base_url=base_url, progress=progress)
            seconds = time.perf_counter() - start
            report = read_report(store, asked.request.distillation_id)
            counts = {t: len(store.read_all(types=[t])) for t in
                      ("DistillateGenerated", "DistillateAssessed", "CloudAssessed", "DistillationCompleted")}
    done = report.completed or {}
    texts = {triple(c.pair_id, d.lens, d.sample): d.text for c in report.clouds for d in c.distillates}
    side = Side(label, report.generated, seconds, int(done.get("completion_tokens", 0)),
                int(done.get("requests", -1)), texts,
                note=f"{done.get('cached', 0)} from the cache; {report.accepted} accepted by the checks")
    facts = {"distillation_id": report.distillation_id, "log": str(log), "events": counts,
             "completed": done, "accepted": report.accepted, "progress_calls": progress_calls,
             "pairs": len(pairs)}
    return side, facts


# --- embedding and dedup ---------------------------------------------------------------------


@dataclass(frozen=True)
class Texts:
    texts: list[str]
    planted: dict[int, int]
    """index of a planted near-duplicate -> index of the text it copies."""


EDITS: tuple[Callable[[str], str], ...] = (
    lambda t: t.rstrip("."),
    lambda t: t[0].lower() + t[1:],
    lambda t: "Indeed, " + t[0].lower() + t[1:],
    lambda t: t.replace(" is ", " is, in fact, ", 1) if " is " in t else t + " Indeed.",
    lambda t: t.rstrip(".") + "!",
    lambda t: t + " That is all.",
)
"""The small edits a resample of the same text tends to make."""


def make_texts(n: int, dup_rate: float, seed: int) -> Texts:
    """`n` one-sentence distillates (two wordings of each biography fact, by the template engine),
    `dup_rate` of them then replaced by an edited copy of an earlier one; the same seed, the same texts."""
    from services.distillation.lenses import select_lenses
    from workers.data.qa_sources import biography_pairs
    from workers.jobs.distill_template import template_distillate

    (fact,) = select_lenses("template-fact")
    per_person = 6 * 2
    pairs = biography_pairs(-(-n // per_person), seed)
    texts = [template_distillate(p, fact.lens, s) for p in pairs for s in range(2)][:n]
    rng = random.Random(seed)
    planted: dict[int, int] = {}
    for i in sorted(rng.sample(range(1, n), round(dup_rate * n))):
        source = rng.randrange(i)
        while source in planted:  # copy an original, so each duplicate has one known source
            source = planted[source]
        texts[i] = rng.choice(EDITS)(texts[source])
        planted[i] = source
    return Texts(texts, planted)


def naive_dedup(unit: Any, threshold: float) -> tuple[list[int], int]:
    """For each text, the first earlier one above `threshold` cosine, one pair at a time."""
    first = [-1] * len(unit)
    compared = 0
    for i in range(len(unit)):
        for j in range(i):
            compared += 1
            if float(unit[i] @ unit[j]) > threshold:
                first[i] = j
                break
    return first, compared


def embedding_and_dedup(workdir: Path, n: int, naive_n: int, dup_rate: float, seed: int) -> dict[str, Any]:
    import numpy as np

    from events.models.distillation import Checks
    from services.importing.adapters import environment
    from workers.jobs.distill_checks import Embedder, dedup_matrix

    made = make_texts(n, dup_rate, seed)
    texts = made.texts
    home = workdir / "embed-home"
    threshold = Checks().duplicate_cosine
    out: dict[str, Any] = {"texts": n, "distinct_texts": len(set(texts)), "planted": len(made.planted),
                           "threshold": threshold, "mean_chars": statistics.fmean(len(t) for t in texts)}
    with environment(KNOBS_HOME=str(home)):
        start = time.perf_counter()
        embedder = Embedder(cache_root=home / "cache")
        out["model_load_s"] = time.perf_counter() - start
        model = embedder.model
        # Untimed warm-up: the first batches pay one-off costs (allocations, kernels) on either side.
        model.encode(texts[:128], batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        start = time.perf_counter()
        plain = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                             show_progress_bar=False)
        out["encode_s"] = time.perf_counter() - start
        start = time.perf_counter()
        cold, _ = embedder.embed(texts)
        out["embed_cold_s"] = time.perf_counter() - start
        out["embed_cold_computed"] = embedder.computed
        start = time.perf_counter()
        warm, _ = embedder.embed(texts)
        out["embed_warm_s"] = time.perf_counter() - start
        out["embed_warm_computed"] = embedder.computed - out["embed_cold_computed"]
    out["cache_files"] = sum(1 for p in (home / "cache" / "embeddings").rglob("*") if p.is_file())
    out["cold_equals_warm"] = bool(np.array_equal(cold, warm))
    out["cold_vs_encode_max_abs"] = float(np.max(np.abs(cold - plain.astype(np.float32))))

    start = time.perf_counter()
    found = dedup_matrix(cold, threshold)
    out["dedup_s"] = time.perf_counter() - start
    prefix = cold[:naive_n]
    start = time.perf_counter()
    found_prefix = dedup_matrix(prefix, threshold)
    out["dedup_prefix_s"] = time.perf_counter() - start
    start = time.perf_counter()
    naive, compared = naive_dedup(prefix, threshold)
    out["naive_prefix_s"] = time.perf_counter() - start
    pairs_all, pairs_prefix = n * (n - 1) // 2, naive_n * (naive_n - 1) // 2
    out.update({
        "naive_texts": naive_n, "pairs_all": pairs_all, "pairs_prefix": pairs_prefix,
        "naive_compared": compared,
        "naive_extrapolated_s": out["naive_prefix_s"] * pairs_all / pairs_prefix,
        "extrapolated": naive_n < n,
        "same_duplicates_on_prefix": naive == found_prefix,
        "prefix_of_full_equals_prefix_run": found[:naive_n] == found_prefix,
        "mismatches_on_prefix": sum(a != b for a, b in zip(naive, found_prefix, strict=True)),
        "duplicates_found": sum(f >= 0 for f in found),
        "planted_found": sum(found[i] >= 0 for i in made.planted),
    })
    out["found_not_planted"] = out["duplicates_found"] - out["planted_found"]
    return out


# --- the run ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.distill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="the smoke size: 2 pairs x 2 lenses x 1 sample, 16 tokens, 400 texts")
    p.add_argument("--pairs", type=int, default=None, help="biography pairs (default 6)")
    p.add_argument("--samples", type=int, default=None, help="samples per (pair, lens) (default 2)")
    p.add_argument("--max-tokens", type=int, default=None, help="max_tokens of every lens (default 48)")
    p.add_argument("--texts", type=int, default=None, help="texts to embed and dedup (default 10000)")
    p.add_argument("--naive-texts", type=int, default=None,
                   help="texts the naive all-pairs loop is timed on (default 2500; extrapolated beyond)")
    p.add_argument("--dup-rate", type=float, default=0.1, help="planted near-duplicates (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the texts (default 0)")
    p.add_argument("--base-url", default=None,
                   help="an OpenAI-compatible server to use instead of starting the local one")
    p.add_argument("--api-key", default="none", help="its key (with --base-url)")
    p.add_argument("--model", default=None, help="the model it serves (with --base-url)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the figures here as JSON")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep the homes, logs and caches here (a new or empty directory)")
    args = p.parse_args(argv)
    size = dict(QUICK if args.quick else FULL)
    for name in ("pairs", "samples", "max_tokens", "texts", "naive_texts"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                p.error(f"--{name.replace('_', '-')} must be at least 1")
            size[name] = value
    if args.texts is not None and args.naive_texts is None:
        size["naive_texts"] = min(size["naive_texts"], size["texts"])
    if size["naive_texts"] > size["texts"]:
        p.error(f"--naive-texts ({size['naive_texts']}) cannot exceed --texts ({size['texts']})")
    if size["texts"] < 2:
        p.error("--texts must be at least 2")
    if not 0 <= args.dup_rate < 1:
        p.error("--dup-rate must be in [0, 1)")
    if args.base_url and not args.model:
        p.error("with --base-url, name the model it serves (--model)")
    args.size = size
    return args


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the embedder ships in a package; no hub
    args = parse_args(argv)
    return in_workdir(args.workdir, "knobs-bench-distill-", lambda workdir: _run(args, workdir))


def _run(args: argparse.Namespace, workdir: Path) -> int:
    from services.infra.llm import start_llm, stop_llm

    started = time.perf_counter()
    server_home = workdir / "server"
    if args.base_url:
        server: dict[str, Any] = {"base_url": args.base_url.rstrip("/"), "api_key": args.api_key,
                                  "model": args.model, "server": "given by --base-url"}
    else:
        print("starting the local LLM server (llama-cpp-python, SmolLM2-135M-Instruct) ...", flush=True)
        server = start_llm(server_home)
    try:
        llm = _llm_sides(args, workdir, server)
    finally:
        if not args.base_url:
            stop_llm(server_home)
    size = args.size
    print(f"embedding and dedup: {size['texts']:,} texts ...", flush=True)
    embed = embedding_and_dedup(workdir, size["texts"], size["naive_texts"], args.dup_rate, args.seed)
    info = {"machine": machine(), "server": {k: v for k, v in server.items() if k != "api_key"},
            "size": {k: list(v) if isinstance(v, tuple) else v for k, v in size.items()},
            "elapsed_s": time.perf_counter() - started, "load_average": os.getloadavg()}
    checks = _checks(llm, embed)
    ok = all(checks.values())
    print(report(llm, embed, info))
    print(f"checks: {'ok' if ok else 'FAILED'} ({', '.join(f'{k}: {v}' for k, v in checks.items())})")
    if args.json is not None:
        payload = {**info, "workload": llm["workload"],
                   "llm": {k: {**asdict(s), "per_s": s.per_s, "tokens_per_s": s.tokens_per_s}
                           for k, s in llm["sides"].items()},
                   "pipeline": llm["pipeline"], "rerun": llm["rerun"], "ratios": llm["ratios"],
                   "same_texts": llm["same_texts"], "embedding": embed, "checks": {**checks, "ok": ok}}
        for side in payload["llm"].values():
            side.pop("texts")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 0 if ok else 1


def _llm_sides(args: argparse.Namespace, workdir: Path, server: dict[str, Any]) -> dict[str, Any]:
    from services.distillation.request import load_pairs
    from workers.jobs.distill import call_for

    size = args.size
    base_url, api_key, model = server["base_url"], server["api_key"], server["model"]
    source = pair_source(size["pairs"])
    _, pairs = load_pairs(source, size["pairs"])
    lenses = bench_lenses(size["lenses"], size["max_tokens"])
    samples = size["samples"]
    n = len(pairs) * len(lenses) * samples
    seeds = {triple(p.id, lens.lens.name, s): call_for(model, lens.lens, p, s).seed
             for p in pairs for lens in lenses for s in range(samples)}
    workload = {"source": source, "pairs": len(pairs), "lenses": [lens.lens.name for lens in lenses],
                "lens_versions": [lens.lens.version for lens in lenses], "samples": samples,
                "max_tokens": size["max_tokens"], "distillates": n}
    print(f"{len(pairs)} pairs x {len(lenses)} lenses ({', '.join(workload['lenses'])}) x {samples} "
          f"samples = {n} distillates, max_tokens {size['max_tokens']}, at {base_url}; working in {workdir}",
          flush=True)
    _warm_up(base_url, api_key, model, pairs[0], lenses)
    sides: dict[str, Side] = {}
    print("plain loop ...", flush=True)
    sides["loop"] = plain_loop(base_url, api_key, model, pairs, lenses, samples, seeds)
    for c in size["concurrency"]:
        print(f"knobs client, concurrency {c} ...", flush=True)
        sides[f"client_c{c}"] = knobs_client(base_url, api_key, model, pairs, lenses, samples, c,
                                             workdir / f"client-c{c}-cache")
    home = workdir / "home"
    print("knobs pipeline, cold ...", flush=True)
    sides["pipeline"], cold = pipeline(home, home / "events.sqlite3", base_url, api_key, model, source,
                                       size["pairs"], lenses, samples,
                                       f"knobs distill pipeline, cold, concurrency {PIPELINE_CONCURRENCY}")
    print("knobs pipeline, fully cached rerun (a fresh log) ...", flush=True)
    sides["rerun"], rerun = pipeline(home, home / "rerun.sqlite3", base_url, api_key, model, source,
                                     size["pairs"], lenses, samples,
                                     "knobs distill pipeline, fully cached rerun, fresh log")
    loop = sides["loop"]
    ratios = {f"{k}_over_loop": s.per_s / loop.per_s for k, s in sides.items() if k != "loop"}
    same = {k: sum(s.texts.get(t) == loop.texts[t] for t in loop.texts)
            for k, s in sides.items() if k != "loop"}
    same["rerun_equals_cold"] = sides["rerun"].texts == sides["pipeline"].texts
    cache_files = {k: sum(1 for _ in (workdir / f"client-c{c}-cache").rglob("*.json"))
                   for k, c in ((f"client_c{c}", c) for c in size["concurrency"])}
    cold["response_cache_files"] = sum(1 for _ in (home / "cache" / "llm").rglob("*.json"))
    print("the embedder's start-up in a fresh process ...", flush=True)
    cold["embedder_startup_s"] = embedder_startup()
    return {"workload": workload, "sides": sides, "pipeline": cold, "rerun": rerun, "ratios": ratios,
            "same_texts": same, "client_cache_files": cache_files}


def _warm_up(base_url: str, api_key: str, model: str, pair: Any, lenses: list[Any]) -> None:
    """One untimed request per lens (another seed than any side's): the server's first answers
    pay one-off costs (its allocations, the prompt prefix it keeps) that no side should carry."""
    import openai

    with openai.OpenAI(base_url=base_url, api_key=api_key) as client:
        for loaded in lenses:
            lens = loaded.lens
            system = [{"role": "system", "content": lens.system}] if lens.system else []
            client.chat.completions.create(
                model=model, max_tokens=lens.sampling.max_tokens, seed=1,
                temperature=lens.sampling.temperature,
                messages=[*system, {"role": "user", "content": lens.template.format(  # type: ignore[list-item]
                    question=pair.question, answer=pair.answer, context=pair.context)}])


def embedder_startup() -> float:
    """Seconds a fresh process takes to import sentence-transformers (torch) and load the embedder:
    what the cold pipeline pays once, in its first assessment, and the rerun pays again in part."""
    import subprocess

    code = ("import time; t = time.perf_counter(); from workers.jobs.distill_checks import Embedder; "
            "Embedder(); print(time.perf_counter() - t)")
    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root,
                          timeout=300, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def _checks(llm: dict[str, Any], embed: dict[str, Any]) -> dict[str, bool]:
    n = llm["workload"]["distillates"]
    sides: dict[str, Side] = llm["sides"]
    cold, rerun = llm["pipeline"], llm["rerun"]
    events = cold["events"]
    return {
        "every_side_all_distillates": all(s.distillates == n for s in sides.values()),
        "client_caches_hold_every_answer": all(v == n for v in llm["client_cache_files"].values()),
        "cold_log_complete": (events["DistillateGenerated"] == events["DistillateAssessed"] == n
                              and events["CloudAssessed"] == cold["pairs"]
                              and events["DistillationCompleted"] == 1),
        "cold_sent_every_request": cold["completed"].get("requests", 0) >= n
        and cold["completed"].get("cached") == 0 and cold["response_cache_files"] == n,
        "rerun_sent_no_request": rerun["completed"].get("requests") == 0
        and rerun["completed"].get("cached") == n,
        "rerun_same_texts": bool(llm["same_texts"]["rerun_equals_cold"]),
        "embed_warm_computed_nothing": embed["embed_warm_computed"] == 0 and embed["cold_equals_warm"],
        "embed_cache_every_text": embed["cache_files"] == embed["distinct_texts"],
        "dedup_same_as_naive": bool(embed["same_duplicates_on_prefix"]
                                    and embed["prefix_of_full_equals_prefix_run"]),
    }


def report(llm: dict[str, Any], embed: dict[str, Any], info: dict[str, Any]) -> str:
    w = llm["workload"]
    sides: dict[str, Side] = llm["sides"]
    loop = sides["loop"]
    rows = [[s.name, str(s.distillates), f"{s.seconds:.2f}", f"{s.per_s:.2f}", f"{s.tokens_per_s:.1f}",
             f"{s.per_s / loop.per_s:.2f}x", str(s.requests), s.note] for s in sides.values()]
    n = embed["texts"]
    e_rows = [
        ["sentence-transformers encode (batch 64, no cache)", f"{embed['encode_s']:.2f}",
         f"{n / embed['encode_s']:,.0f}", "1.00x"],
        ["knobs Embedder.embed, cold (encode + a blob per text)", f"{embed['embed_cold_s']:.2f}",
         f"{n / embed['embed_cold_s']:,.0f}", f"{embed['encode_s'] / embed['embed_cold_s']:.2f}x"],
        ["knobs Embedder.embed, warm (every vector from the cache)", f"{embed['embed_warm_s']:.3f}",
         f"{n / embed['embed_warm_s']:,.0f}", f"{embed['encode_s'] / embed['embed_warm_s']:.1f}x"],
    ]
    m, p = embed["naive_texts"], embed["pairs_prefix"]
    naive_all = embed["naive_extrapolated_s"] if embed["extrapolated"] else embed["naive_prefix_s"]
    d_rows = [
        [f"knobs dedup_matrix, {n:,} texts", f"{embed['pairs_all']:,}", f"{embed['dedup_s']:.3f}",
         f"{embed['pairs_all'] / embed['dedup_s']:,.0f}", f"{n / embed['dedup_s']:,.0f}",
         f"{naive_all / embed['dedup_s']:,.0f}x"],
        [f"naive loop, {n:,} texts" + (" (EXTRAPOLATED from the prefix)" if embed["extrapolated"] else ""),
         f"{embed['pairs_all']:,}", f"{naive_all:.1f}", f"{embed['pairs_all'] / naive_all:,.0f}",
         f"{n / naive_all:,.0f}", "1x"],
    ]
    if embed["extrapolated"]:
        d_rows += [
            [f"knobs dedup_matrix, first {m:,} texts", f"{p:,}", f"{embed['dedup_prefix_s']:.4f}",
             f"{p / embed['dedup_prefix_s']:,.0f}", f"{m / embed['dedup_prefix_s']:,.0f}",
             f"{embed['naive_prefix_s'] / embed['dedup_prefix_s']:,.0f}x"],
            [f"naive loop, first {m:,} texts (measured)", f"{p:,}", f"{embed['naive_prefix_s']:.2f}",
             f"{p / embed['naive_prefix_s']:,.0f}", f"{m / embed['naive_prefix_s']:,.0f}", "1x"],
        ]
    cold = llm["pipeline"]
    server = info["server"]
    threads = f", {server['n_threads']} thread(s)" if "n_threads" in server else ""
    lines = [
        "",
        f"LLM workload: {w['pairs']} pairs ({w['source']}) x {len(w['lenses'])} lenses "
        f"({', '.join(w['lenses'])}) x {w['samples']} samples = {w['distillates']} distillates, "
        f"max_tokens {w['max_tokens']}; server "
        f"{server.get('server', '')} serving {server['model']}{threads}",
        table(["side", "distillates", "seconds", "distillates/s", "completion tok/s", "vs loop", "requests",
               "note"], rows),
        "",
        "same texts as the plain loop (same messages, sampling and seed): "
        + ", ".join(f"{k} {v}/{loop.distillates}" for k, v in llm["same_texts"].items()
                    if k != "rerun_equals_cold")
        + f"; cached rerun identical to the cold run: {llm['same_texts']['rerun_equals_cold']}",
        f"pipeline log: {cold['events']['DistillateGenerated']} DistillateGenerated, "
        f"{cold['events']['DistillateAssessed']} DistillateAssessed, {cold['events']['CloudAssessed']} "
        f"CloudAssessed, {cold['events']['DistillationCompleted']} DistillationCompleted; "
        f"requests {cold['completed'].get('requests')}; rerun requests "
        f"{llm['rerun']['completed'].get('requests')}, from cache {llm['rerun']['completed'].get('cached')}",
        f"cached rerun: {sides['rerun'].seconds / sides['rerun'].distillates * 1000:.0f} ms a distillate "
        f"(the plain loop pays {loop.seconds / loop.distillates * 1000:.0f} ms again on every rerun); "
        f"cold pipeline minus the client at concurrency {PIPELINE_CONCURRENCY}: "
        f"{sides['pipeline'].seconds - sides.get(f'client_c{PIPELINE_CONCURRENCY}', loop).seconds:.1f} s "
        f"(the log, the checks, and the embedder's start-up: {cold['embedder_startup_s']:.1f} s in a fresh "
        "process, importing torch and sentence-transformers and loading the model)",
        "the server answers one request at a time: concurrency can only overlap the client's own "
        "work (HTTP, JSON, the cache, the log) with generation. The pipeline asks one base_url, so it "
        "cannot spread a distillation over two servers.",
        "",
        f"embedding: {n:,} texts (mean {embed['mean_chars']:.0f} characters, {embed['planted']:,} planted "
        f"near-duplicates), all-MiniLM-L6-v2 on the CPU, model load {embed['model_load_s']:.1f} s "
        "(not in the table)",
        table(["side", "seconds", "texts/s", "vs encode"], e_rows),
        f"  cold and warm vectors identical: {embed['cold_equals_warm']}; max |knobs - encode| "
        f"{embed['cold_vs_encode_max_abs']:.1e}; warm pass computed {embed['embed_warm_computed']} vectors; "
        f"cache index files {embed['cache_files']:,} for {embed['distinct_texts']:,} distinct texts",
        "",
        f"dedup (first earlier text above cosine {embed['threshold']}):",
        table(["side", "pairs", "seconds", "pairs/s", "texts/s", "vs naive"], d_rows),
        f"  same duplicates as the naive loop on the first {m:,} texts: {embed['same_duplicates_on_prefix']} "
        f"({embed['mismatches_on_prefix']} differ); the naive loop compared {embed['naive_compared']:,} of "
        f"{p:,} pairs (it stops at a text's first duplicate)",
        f"  found {embed['duplicates_found']:,} duplicates in {n:,} texts: {embed['planted_found']:,} of "
        f"{embed['planted']:,} planted, {embed['found_not_planted']:,} others (two wordings of one fact "
        "that close, or copies of a planted text's source)",
        "",
        "machine: {cpu}; {cores} cores ({cores_usable} usable); {ram_gib} GiB RAM; Python {python}; "
        "{platform}".format(**info["machine"]),
        f"load average at the end: {', '.join(f'{x:.2f}' for x in info['load_average'])}; "
        f"whole run {info['elapsed_s']:.0f} s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
