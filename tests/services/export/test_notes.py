"""`knobs export notes`: a vault whose front matter parses, whose links resolve, and that re-exports
byte for byte, removing only its own stale notes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from services.core.context import Context
from services.core.errors import BadInput
from services.export.notes import MANIFEST, export_notes, safe_name
from tests.services.export import BENCHMARK, CITATION, EXPERIMENT, OTHER, build_log

ROOT = Path(__file__).resolve().parents[3]
# [[target]], [[target|shown]] and, inside tables, [[target\|shown]]
LINK = re.compile(r"\[\[([^\]|\\]+)(?:\\?\|[^\]]*)?\]\]")
UNSAFE = set('/\\:*?"<>|#^[]')
SVG = "{http://www.w3.org/2000/svg}"


def knobs(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "services.cli.main", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"knobs {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def notes_of(vault: Path) -> dict[str, bytes]:
    return {p.relative_to(vault).as_posix(): p.read_bytes() for p in sorted(vault.rglob("*")) if p.is_file()}


def front_matter(text: str) -> dict[str, object]:
    assert text.startswith("---\n"), text[:80]
    end = text.index("\n---\n", 4)
    data = yaml.safe_load(text[4:end])
    assert isinstance(data, dict)
    return data


def test_safe_names_work_on_every_os_and_in_links() -> None:
    assert safe_name("hellaswag/acc") == "hellaswag_acc"
    assert safe_name('a\\b:c*d?e"f<g>h|i#j^k[l]m') == "a_b_c_d_e_f_g_h_i_j_k_l_m"
    assert safe_name("CON") == "CON_" and safe_name("lpt1.txt") == "lpt1.txt_"
    assert safe_name(" .hidden. ") == "hidden"
    assert safe_name("") == "_"
    long = safe_name("x" * 500)
    assert len(long.encode()) <= 120 and long != safe_name("x" * 499)


@pytest.mark.slow
def test_vault_front_matter_parses_and_every_link_resolves(knobs_env: dict[str, str], tmp_path: Path) -> None:
    # Given two imported experiments, one ranked on a benchmark whose name has a slash
    ranking_id = build_log(tmp_path)
    vault = tmp_path / "vault"

    # When the vault is exported from the command line
    out = knobs(knobs_env, "export", "notes", str(vault), "--json")
    summary = json.loads(out.stdout)
    assert summary["notes"] == {"experiments": 2, "benchmarks": 2, "parameters": 4, "datasets": 2,
                                "rankings": 1, "measurements": 0, "verdicts": 0, "pairs": 0}
    assert summary["figures"] == 1

    # Then every note is where Obsidian expects it, with a safe, vault-unique basename
    files = notes_of(vault)
    notes = {rel: data.decode() for rel, data in files.items() if rel.endswith(".md")}
    short = ranking_id[:8]
    assert set(notes) == {
        "index.md",
        f"Experiments/{EXPERIMENT}.md", f"Experiments/{OTHER}.md",
        "Benchmarks/hellaswag_acc.md", "Benchmarks/val_loss.md",
        "Parameters/lr.md", "Parameters/n_layer.md", "Parameters/dataset.md", "Parameters/attn_kind.md",
        "Datasets/wiki_en_v1.md", "Datasets/books.md",
        f"Rankings/{EXPERIMENT} - hellaswag_acc - ofat - {short}.md",
    }
    figure = f"Figures/ranking-{ranking_id}.svg"
    assert set(files) - set(notes) == {MANIFEST, figure}
    basenames = {Path(rel).stem for rel in notes}
    assert len({b.casefold() for b in basenames}) == len(notes)
    assert not any(set(b) & UNSAFE for b in basenames)

    # every front matter is YAML with tags, dates from the log and sources; every link resolves
    for rel, text in notes.items():
        meta = front_matter(text)
        assert isinstance(meta["tags"], list) and all(str(t).startswith("knobs/") for t in meta["tags"]), rel
        assert meta["created"] <= meta["updated"], rel  # type: ignore[operator]
        assert isinstance(meta["sources"], list) and meta["sources"], rel
        targets = LINK.findall(text)
        missing = [t for t in targets if t not in basenames and t != Path(figure).name]
        assert not missing, f"{rel} links to missing notes {missing}"
    assert all(LINK.findall(notes[rel]) for rel in notes), "every note links somewhere"

    # the ranking note: method, as_of, code version, the parameters table, flags and how to audit
    ranking = notes[f"Rankings/{EXPERIMENT} - hellaswag_acc - ofat - {short}.md"]
    meta = front_matter(ranking)
    assert meta["ranking_id"] == ranking_id and meta["aliases"] == [ranking_id]
    assert meta["benchmark"] == BENCHMARK and meta["method"] == "ofat"
    assert any(CITATION in s for s in meta["sources"])  # type: ignore[attr-defined]
    assert any(s.startswith("log ") and "RankingDerived" in s for s in meta["sources"])  # type: ignore[attr-defined]
    assert "[[hellaswag_acc|hellaswag/acc]]" in ranking
    assert re.search(r"^\| 1 \| \[\[lr\]\] \| 0\.1 \|", ranking, re.MULTILINE), ranking
    assert f"knobs audit {ranking_id}" in ranking
    assert "Events used: 30" in ranking
    # and embeds its tornado chart, an SVG in the vault with one bar per ranked parameter
    assert f"![[ranking-{ranking_id}.svg]]" in ranking
    root = ET.fromstring(files[figure])
    assert [g.get("id") for g in root.iter(f"{SVG}g") if (g.get("id") or "").startswith("bar-")] == [
        "bar-1", "bar-2"]
    assert any(ranking_id in "".join(t.itertext()) for t in root.iter(f"{SVG}text"))

    # the parameter note lists its rank in the ranking, linked; explored values per experiment
    lr = notes["Parameters/lr.md"]
    assert f"[[{EXPERIMENT} - hellaswag_acc - ofat - {short}\\|{short}]]" in lr
    assert "| 1 of 2 |" in lr and "0.001, 0.002, 0.004" in lr
    # a sanitised name keeps its real name as an alias and shows it in links
    attn = front_matter(notes["Parameters/attn_kind.md"])
    assert attn["aliases"] == ["attn:kind"]
    assert "[[attn_kind\\|attn:kind]]" in notes[f"Experiments/{EXPERIMENT}.md"]
    # a data set is a value of the `dataset` run parameter, linked to the experiments that used it
    wiki = notes["Datasets/wiki_en_v1.md"]
    assert front_matter(wiki)["aliases"] == ["wiki/en:v1"]
    assert f"[[{EXPERIMENT}]] | 15 |" in wiki and f"[[{OTHER}]]" not in wiki
    assert "[[books]]" in notes[f"Experiments/{OTHER}.md"]
    # the benchmark note has the ranked knobs of the experiment
    bench = notes["Benchmarks/hellaswag_acc.md"]
    assert front_matter(bench)["direction"] == "higher"
    assert bench.index("[[lr]]") < bench.index("[[n_layer]]")


@pytest.mark.slow
def test_reexport_is_identical_and_removes_only_its_own_stale_notes(
    knobs_env: dict[str, str], tmp_path: Path
) -> None:
    build_log(tmp_path)
    vault = tmp_path / "vault"
    with Context() as ctx:
        first = export_notes(ctx, vault)
    assert first.written == 12 and first.removed == []
    before = notes_of(vault)

    # Given a note a previous export wrote that is now stale, and files of the user's own
    manifest = json.loads((vault / MANIFEST).read_text())
    manifest["files"].append("Parameters/gone.md")
    (vault / MANIFEST).write_text(json.dumps(manifest))
    (vault / "Parameters" / "gone.md").write_text("stale")
    (vault / "Parameters" / "mine.md").write_text("my own note")
    (vault / "journal.md").write_text("my journal")

    # When the same log is exported again
    with Context() as ctx:
        again = export_notes(ctx, vault)

    # Then every note is byte-identical, the stale one is gone and the user's files are kept
    assert again.removed == ["Parameters/gone.md"] and again.written == 0 and again.unchanged == 12
    after = notes_of(vault)
    assert not (vault / "Parameters" / "gone.md").exists()
    assert after.pop("Parameters/mine.md") == b"my own note"
    assert after.pop("journal.md") == b"my journal"
    assert after == before


@pytest.mark.slow
def test_refuses_a_folder_it_did_not_write_unless_forced(knobs_env: dict[str, str], tmp_path: Path) -> None:
    build_log(tmp_path)
    vault = tmp_path / "mine"
    vault.mkdir()
    (vault / "notes.md").write_text("mine")

    refused = knobs(knobs_env, "export", "notes", str(vault), check=False)
    assert refused.returncode == 2
    assert "not empty" in refused.stderr and "--force" in refused.stderr
    assert [p.name for p in vault.iterdir()] == ["notes.md"]

    with Context() as ctx, pytest.raises(BadInput):
        export_notes(ctx, vault)
    with Context() as ctx:
        forced = export_notes(ctx, vault, force=True)
    assert forced.written == 12
    assert (vault / "notes.md").read_text() == "mine" and (vault / MANIFEST).exists()


def test_measurements_and_verdicts_get_notes_that_link_each_other(knobs_env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    # Given a log with three finished shift measurements and a verdict citing them
    from events.settings import EventsSettings
    from events.store.factory import open_store
    from tests.graph.test_shift_projection import shift_log

    store = open_store(EventsSettings())
    try:
        shift_log(store)
    finally:
        store.close()
    vault = tmp_path / "vault"
    # When the vault is exported
    summary = json.loads(knobs(knobs_env, "export", "notes", str(vault), "--json").stdout)
    # Then each measurement and the verdict have a note, and every link resolves
    assert summary["notes"]["measurements"] == 3 and summary["notes"]["verdicts"] == 1
    notes = {rel: data.decode() for rel, data in notes_of(vault).items() if rel.endswith(".md")}
    verdict = next(text for rel, text in notes.items() if rel.startswith("Verdicts/"))
    assert "supported" in verdict and "knobs audit h1" in verdict
    basenames = {Path(rel).stem for rel in notes}
    for text in notes.values():
        for link in re.findall(r"\[\[([^\]|\\]+)", text):
            assert link in basenames, link
    measurement = next(text for text in notes.values() if "measurement: m1" in text)
    assert front_matter(measurement)["volatility"] == 0.2 and "Verdicts that used it" in measurement


def test_every_distilled_pair_gets_a_note_with_its_lenses(knobs_env: dict[str, str], tmp_path: Path) -> None:
    # Given a log with two distillations of three pairs
    from events.settings import EventsSettings
    from events.store.factory import open_store
    from tests.graph.distillation_log import LENSES, distillation_log

    store = open_store(EventsSettings())
    try:
        log = distillation_log(store)
    finally:
        store.close()
    vault = tmp_path / "vault"
    # When the vault is exported
    summary = json.loads(knobs(knobs_env, "export", "notes", str(vault), "--json").stdout)
    # Then each pair has one note, listed in the index, naming every lens it went through
    assert summary["notes"]["pairs"] == 3
    notes = {rel: data.decode() for rel, data in notes_of(vault).items() if rel.endswith(".md")}
    q2 = notes["Pairs/facts.jsonl - q2.md"]
    meta = front_matter(q2)
    assert (meta["pair"], meta["distillates"], meta["accepted"], meta["tags"]) == ("q2", 7, 4, ["knobs/pair"])
    assert meta["sources"][0].startswith("log 4: DistillationRequested " + log.a)
    assert "**Answer.** chemistry (a known answer" in q2
    child = LENSES[1].version
    assert f"| child | explain | {child} | {log.a[:8]} | 2 | 0 | too_short 2 |" in q2
    assert q2.count("| restate | restate |") == 2, "both versions of restate"
    assert f"| {log.a[:8]} | tiny-instruct | llm | 6 | 3 | 0.5 | 3.5 |" in q2
    assert f"| {log.b[:8]} | template | template | 1 | 1 | - | - |" in q2
    assert "restate #0: What did Anya Petrova study?" in q2 and "child #0: What did" not in q2
    assert "[[facts.jsonl - q1]]" in notes["index.md"]
    q3 = notes["Pairs/facts.jsonl - q3.md"]
    assert "(no known answer" in q3
    basenames = {Path(rel).stem for rel in notes}
    for text in notes.values():
        for link in re.findall(r"\[\[([^\]|\\]+)", text):
            assert link in basenames, link


@pytest.mark.slow
def test_ranking_figures_reexport_identical_and_follow_the_current_ranking(
    knobs_env: dict[str, str], tmp_path: Path
) -> None:
    from services.cli.export_cmd import tornado_svg
    from services.ranking.rank import RankOptions, rank
    from tests.services.export import BENCHMARK, EXPERIMENT

    # Given a ranked log exported with figures
    first_id = build_log(tmp_path)
    vault = tmp_path / "vault"
    with Context() as ctx:
        first = export_notes(ctx, vault, ranking_figure=tornado_svg)
    assert first.figures == 1 and first.written == 13
    before = notes_of(vault)
    assert f"Figures/ranking-{first_id}.svg" in before

    # When the same log is exported again, in another process (the command a person runs)
    out = json.loads(knobs(knobs_env, "export", "notes", str(vault), "--json").stdout)

    # Then nothing is rewritten: the SVG is the same bytes from one process to the next
    assert (out["written"], out["unchanged"], out["removed"], out["figures"]) == (0, 13, [], 1)
    assert notes_of(vault) == before

    # When the ranking is superseded (ranked again with another bootstrap seed) and re-exported
    with Context() as ctx:
        second_id = rank(ctx, EXPERIMENT, BENCHMARK, RankOptions(bootstrap_seed=1)).ranking.ranking_id
        again = export_notes(ctx, vault, ranking_figure=tornado_svg)

    # Then the old figure goes with its note, and the new note embeds the new figure
    assert second_id != first_id
    assert f"Figures/ranking-{first_id}.svg" in again.removed
    after = notes_of(vault)
    assert f"Figures/ranking-{first_id}.svg" not in after and f"Figures/ranking-{second_id}.svg" in after
    note = next(text.decode() for rel, text in after.items() if rel.startswith("Rankings/"))
    assert f"![[ranking-{second_id}.svg]]" in note and first_id not in note.split("## Provenance")[0]

    # And without figures the figure, its folder and the embed are gone; nothing else of ours changed
    with Context() as ctx:
        plain = export_notes(ctx, vault)
    assert plain.figures == 0 and plain.removed == [f"Figures/ranking-{second_id}.svg"]
    assert not (vault / "Figures").exists()
    assert not any(b"![[" + b"ranking-" in text for text in notes_of(vault).values())
