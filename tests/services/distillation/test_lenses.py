"""Lenses as data: the builtins, versions by content, the user's directories, and every bad file
named with its field."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml

from events.models.distillation import Lens, lens_version
from services.core.errors import BadInput
from services.distillation.lenses import (
    BUILTIN,
    BUILTIN_DIR,
    LensError,
    check_paths,
    load_lens_file,
    load_lenses,
    select_lenses,
)

# The issue's list of lens kinds, each mapped to the family name our builtins use for it.
REQUIRED_FAMILIES = {
    "restate": "restate", "explain to a child": "child", "expert": "expert", "causal": "causal",
    "counterfactual": "counterfactual", "historical": "historical", "analogy": "analogy",
    "geometric/visual": "visual", "narrative": "narrative", "dialogue": "dialogue",
    "Socratic": "socratic", "quiz with distractors": "quiz", "contrastive": "contrastive",
    "step by step": "stepwise", "summary": "summary", "elaboration": "elaboration",
    "formal definition": "definition", "mnemonic": "mnemonic", "FAQ": "faq", "debate": "debate",
    "a wrong answer and its correction": "correction", "reversed (answer -> question)": "reversed",
    "translation and back": "translation", "link to a related fact": "link",
}

GOOD = {
    "name": "mine", "family": "restate", "description": "Mine.",
    "template": "Q: {question}\nA: {answer}\nSay it again. Write only the text.",
    "sampling": {"temperature": 0.5, "top_p": 0.9, "max_tokens": 100},
    "keeps": {"answer": True, "min_chars": 10, "max_chars": 500},
}


@pytest.fixture(autouse=True)
def _no_user_lenses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A KNOBS_HOME without lenses and no KNOBS_LENS_DIRS: only what a test adds."""
    monkeypatch.setenv("KNOBS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KNOBS_LENS_DIRS", raising=False)


def write(path: Path, body: dict[str, object] | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body if isinstance(body, str) else yaml.safe_dump(body, sort_keys=False))
    return path


def test_every_builtin_lens_loads_and_the_families_cover_the_issue() -> None:
    lenses = load_lenses()
    assert len(lenses) >= 24
    assert all(item.origin == BUILTIN for item in lenses.values())
    families = {item.lens.family for item in lenses.values()}
    missing = {kind for kind, family in REQUIRED_FAMILIES.items() if family not in families}
    assert not missing
    assert {"template-bio", "template-fact"} <= set(lenses)
    assert len({item.version for item in lenses.values()}) == len(lenses)


def test_builtin_templates_are_short_direct_and_say_what_to_write() -> None:
    # For a 135M instruct model: one short instruction that ends with what to write.
    for item in load_lenses().values():
        lens = item.lens
        fields = {f for _, f, _, _ in string.Formatter().parse(lens.template) if f}
        assert fields <= {"question", "answer", "context"} and "answer" in fields, lens.name
        last = lens.template.strip().splitlines()[-1]
        assert last.endswith(".") and "Write only" in last, lens.name
        assert len(lens.template) < 600, lens.name
        # Every builtin keeps the answer (see the comments in the files); the checks need room
        # for what max_tokens allows.
        assert lens.keeps.answer, lens.name
        assert lens.keeps.max_chars >= 4 * lens.sampling.max_tokens, lens.name


def test_the_version_follows_every_field_and_nothing_else(tmp_path: Path) -> None:
    base = load_lens_file(write(tmp_path / "mine.yaml", GOOD))
    assert base.version == lens_version(base) and len(base.version) == 16
    # Given the same content in flow style, keys reordered, with comments
    flow = "# a comment\n" + yaml.safe_dump(dict(reversed(list(GOOD.items()))), default_flow_style=True)
    assert load_lens_file(write(tmp_path / "other" / "mine.yaml", flow)).version == base.version
    # and defaults written out or left out are the same lens
    sparse = {k: v for k, v in GOOD.items() if k != "sampling"}
    spelled = {**sparse, "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 256}}
    assert (load_lens_file(write(tmp_path / "a" / "mine.yaml", sparse)).version
            == load_lens_file(write(tmp_path / "b" / "mine.yaml", spelled)).version)
    # When any one field changes, the version does
    changes = {"family": "expert", "description": "Other.", "system": "Be brief.",
               "template": GOOD["template"] + " ",
               "sampling": {**GOOD["sampling"], "temperature": 0.6},  # type: ignore[dict-item]
               "keeps": {**GOOD["keeps"], "min_chars": 11}}  # type: ignore[dict-item]
    versions = {base.version}
    for i, (key, value) in enumerate(changes.items()):
        changed = load_lens_file(write(tmp_path / f"c{i}" / "mine.yaml", {**GOOD, key: value}))
        versions.add(changed.version)
    renamed = Lens.model_validate({**GOOD, "name": "yours"})
    versions.add(renamed.version)
    assert len(versions) == len(changes) + 2


def test_a_user_directory_adds_lenses_and_overrides_a_builtin(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    builtin = load_lenses()["restate"]
    home_lens = write(tmp_path / "home" / "lenses" / "mine.yaml", GOOD)
    mine = write(tmp_path / "dir" / "restate.yaml", {**GOOD, "name": "restate"})
    env_dir = tmp_path / "env"
    write(env_dir / "envlens.yaml", {**GOOD, "name": "envlens"})
    write(env_dir / "README.md", "not a lens; ignored")
    monkeypatch.setenv("KNOBS_LENS_DIRS", str(env_dir))

    lenses = load_lenses([tmp_path / "dir"])

    assert lenses["mine"].origin == str(home_lens)
    assert lenses["envlens"].origin == str(env_dir / "envlens.yaml")
    assert lenses["restate"].origin == str(mine) and lenses["restate"].overrides == BUILTIN
    assert lenses["restate"].version != builtin.version
    assert lenses["child"].origin == BUILTIN
    # A later directory replaces an earlier one's lens of the same name, and says whose
    write(tmp_path / "later" / "mine.yaml", {**GOOD, "description": "Later."})
    later = load_lenses([tmp_path / "later"])["mine"]
    assert later.lens.description == "Later." and later.overrides == str(home_lens)


def test_a_named_directory_that_does_not_exist_is_an_error(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LensError, match=r"--lens-dir .*missing: no such directory"):
        load_lenses([tmp_path / "missing"])
    monkeypatch.setenv("KNOBS_LENS_DIRS", str(tmp_path / "typo"))
    with pytest.raises(LensError, match=r"KNOBS_LENS_DIRS: .*typo is not a directory"):
        load_lenses()


@pytest.mark.parametrize(("body", "message"), [
    ({**GOOD, "sampling": {"temperature": 5}}, r"field `sampling\.temperature`: Input should be less"),
    ({**GOOD, "keeps": {"max_chars": 0}}, r"field `keeps\.max_chars`"),
    ({k: v for k, v in GOOD.items() if k != "template"}, r"field `template`: Field required"),
    ({**GOOD, "tempalte": "x"}, r"field `tempalte` is not a lens field \(allowed: name, family"),
    ({**GOOD, "name": "Bad Name"}, r"field `name`: String should match pattern"),
    ({**GOOD, "name": "other"}, r"field `name` is 'other' but the file is named 'mine.yaml'"),
    ({**GOOD, "template": "Q: {question} {answre}"}, r"field `template`: unknown placeholder \{answre\}"),
    ({**GOOD, "template": "Q: {question} {0}"}, r"unknown placeholder \{0\}"),
    ({**GOOD, "template": "Q: {question} {answer.upper}"}, r"unknown placeholder \{answer\.upper\}"),
    ({**GOOD, "template": "Write about {context}."}, r"field `template` names neither"),
    ({**GOOD, "template": "Q: {question"}, r"field `template`: .*literal braces"),
    ({**GOOD, "system": "You see {answer}."}, r"field `system` is sent as written"),
    ({**GOOD, "keeps": {"min_chars": 900, "max_chars": 800}}, r"`keeps\.min_chars` \(900\) exceeds"),
    ("- a\n- list\n", r"one YAML mapping .* not a list"),
    ("", r"not an empty file"),
    ("name: [unclosed\n", r"not YAML"),
])
def test_a_malformed_lens_file_is_named_with_its_field(tmp_path: Path, body: dict[str, object] | str,
                                                       message: str) -> None:
    path = write(tmp_path / "mine.yaml", body)
    with pytest.raises(LensError, match=message) as caught:
        load_lens_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert isinstance(caught.value, BadInput)  # the CLI's exit 2
    assert "\n" not in str(caught.value)


def test_literal_braces_are_allowed_when_doubled(tmp_path: Path) -> None:
    lens = load_lens_file(write(tmp_path / "mine.yaml", {**GOOD, "template": "{{json}}: {answer}"}))
    assert lens.template.format(question="q", answer="a", context="c") == "{json}: a"


def test_one_bad_user_file_fails_the_whole_load(tmp_path: Path) -> None:
    write(tmp_path / "dir" / "mine.yaml", {**GOOD, "sampling": {"top_p": 0}})
    with pytest.raises(LensError, match=r"mine\.yaml: field `sampling\.top_p`"):
        load_lenses([tmp_path / "dir"])
    write(tmp_path / "two" / "x.yaml", {**GOOD, "name": "x"})
    write(tmp_path / "two" / "x.yml", {**GOOD, "name": "x"})
    with pytest.raises(LensError, match=r"two files for lens 'x' \(x\.yaml, x\.yml\)"):
        load_lenses([tmp_path / "two"])


def test_selection_by_names_family_and_all_in_order() -> None:
    lenses = load_lenses()
    assert [i.lens.name for i in select_lenses("quiz, restate,quiz", lenses)] == ["quiz", "restate"]
    assert [i.lens.name for i in select_lenses("family:template", lenses)] == ["template-bio",
                                                                              "template-fact"]
    everything = select_lenses("all", lenses)
    assert [i.lens.name for i in everything] == sorted(lenses)
    assert [i.lens.name for i in select_lenses("child,all", lenses)][:2] == ["child", "analogy"]


@pytest.mark.parametrize(("spec", "message"), [
    ("restat", r"unknown lens 'restat': did you mean restate\?"),
    ("quiz,zzzz", r"unknown lens 'zzzz': `knobs lenses list` shows the \d+ lenses"),
    ("family:causl", r"no lens of family 'causl': did you mean causal\? families: analogy"),
    (" , ", r"--lenses is empty"),
])
def test_a_bad_selection_names_the_close_matches(spec: str, message: str) -> None:
    with pytest.raises(LensError, match=message):
        select_lenses(spec)


def test_check_gives_one_verdict_per_file(tmp_path: Path) -> None:
    good = write(tmp_path / "d" / "mine.yaml", GOOD)
    bad = write(tmp_path / "d" / "bad.yaml", {**GOOD, "name": "bad", "family": ""})
    checked = check_paths([tmp_path / "d", BUILTIN_DIR / "quiz.yaml", tmp_path / "nowhere.yaml"])
    verdicts = {c.path: c for c in checked}
    assert verdicts[good].lens is not None and verdicts[good].error == ""
    assert verdicts[bad].lens is None and "field `family`" in verdicts[bad].error
    assert verdicts[BUILTIN_DIR / "quiz.yaml"].lens is not None
    assert "no such file or directory" in verdicts[tmp_path / "nowhere.yaml"].error
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no lens files" in check_paths([empty])[0].error
