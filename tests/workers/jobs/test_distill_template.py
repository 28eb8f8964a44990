"""The template engine: deterministic rewrites of structured facts, the answer always stated, the
full name in every sentence, the order permuted, the samples distinct."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from events.models.distillation import DistillInputRejected, Lens, QAPair
from workers.data.biographies import ATTRIBUTES, HELDOUT_TEMPLATES, TRAIN_TEMPLATES
from workers.data.qa_sources import load_pairs
from workers.jobs.distill_template import GENERIC, TEMPLATES, template_distillate

LENS_DIR = Path(__file__).resolve().parents[3] / "services" / "distillation" / "lenses"


def lens(name: str) -> Lens:
    # The builtin files, read as data: workers never import services' loader.
    return Lens.model_validate(yaml.safe_load((LENS_DIR / f"{name}.yaml").read_text()))


@pytest.fixture(scope="module")
def pairs() -> list[QAPair]:
    return load_pairs("biographies:people=4,seed=1")[1]


def sentences(text: str) -> list[str]:
    # Values hold commas ("Austin, TX") and no sentence ends inside them; split after ". "
    return [s for s in re.split(r"(?<=\.) ", text) if s]


def test_every_attribute_has_at_least_three_templates_all_new_wording() -> None:
    assert set(TEMPLATES) == set(ATTRIBUTES)
    corpus = {t for table in (TRAIN_TEMPLATES, HELDOUT_TEMPLATES) for ts in table.values() for t in ts}
    for attribute, templates in TEMPLATES.items():
        assert len(set(templates)) >= 3, attribute
        assert not set(templates) & corpus, attribute  # held-out stays held out; no copies
        assert all("{name}" in t and "{value}" in t for t in templates), attribute
    assert len(GENERIC) >= 3 and all("{name}" in t and "{value}" in t for t in GENERIC)


def test_the_same_pair_lens_and_sample_give_the_same_text(pairs: list[QAPair]) -> None:
    bio = lens("template-bio")
    first = [template_distillate(p, bio, s) for p in pairs for s in range(3)]
    again = [template_distillate(p, lens("template-bio"), s) for p in pairs for s in range(3)]
    assert first == again
    # Another lens, or the same lens edited (a new version), draws another cloud
    assert template_distillate(pairs[0], lens("restate"), 0) != template_distillate(pairs[0], bio, 0)
    edited = bio.model_copy(update={"description": "edited"})
    assert edited.version != bio.version
    assert ([template_distillate(pairs[0], edited, s) for s in range(8)]
            != [template_distillate(pairs[0], bio, s) for s in range(8)])

def test_a_biography_states_every_fact_and_names_the_subject_in_every_sentence(
        pairs: list[QAPair]) -> None:
    for pair in pairs:
        for sample in range(6):
            text = template_distillate(pair, lens("template-bio"), sample)
            assert pair.answer in text
            assert all(value in text for value in pair.facts.values())
            parts = sentences(text)
            assert len(parts) == len(ATTRIBUTES)
            assert all(pair.subject in s for s in parts), text
            assert text.count(pair.subject) == len(ATTRIBUTES)  # once a sentence, in full


def test_template_fact_states_the_asked_fact_alone(pairs: list[QAPair]) -> None:
    for pair in pairs:
        texts = [template_distillate(pair, lens("template-fact"), s) for s in range(4)]
        assert all(pair.answer in t and pair.subject in t and len(sentences(t)) == 1
                   for t in texts)
        assert len(set(texts)) == 4  # four templates, four wordings
        others = [v for a, v in pair.facts.items() if a != pair.attribute and v not in pair.answer]
        assert not any(v in t for v in others for t in texts)


def test_samples_are_distinct_and_permute_the_order(pairs: list[QAPair]) -> None:
    bio = lens("template-bio")
    for pair in pairs:
        texts = [template_distillate(pair, bio, s) for s in range(40)]
        assert len(set(texts)) == 40
        # Within a cycle (4 templates for every attribute) no two samples share any sentence
        cycle = [set(sentences(t)) for t in texts[:4]]
        assert all(not (cycle[i] & cycle[j]) for i in range(4) for j in range(i + 1, 4))
        # The order of the facts varies: the attribute whose value comes first is not always the same
        first_fact = {min(pair.facts, key=lambda a: t.index(pair.facts[a])) for t in texts}
        assert len(first_fact) >= 4


def test_any_lens_applies_and_the_answer_is_always_there(pairs: list[QAPair]) -> None:
    for name in ("restate", "quiz", "reverse", "wrong-then-right"):
        for pair in pairs[:6]:
            assert pair.answer in template_distillate(pair, lens(name), 7)


def test_a_jsonl_pair_with_its_own_attribute_gets_the_generic_templates() -> None:
    pair = QAPair(id="ada", question="What was Ada's favourite number?", answer="seven",
                  subject="Ada King", attribute="favourite_number",
                  facts={"favourite_number": "seven", "birth_city": "London"})
    texts = {template_distillate(pair, lens("template-bio"), s) for s in range(6)}
    assert len(texts) == 6
    assert all("seven" in t and "London" in t and t.count("Ada King") == 2 for t in texts)
    # The answer is stated exactly as written, never re-cased at the start of a sentence
    assert not any("Seven" in t for t in texts)
    # facts may be left out: the asked fact alone is the biography
    alone = pair.model_copy(update={"facts": {}})
    assert template_distillate(alone, lens("template-bio"), 0).count("Ada King") == 1


@pytest.mark.parametrize(("update", "message"), [
    ({"subject": ""}, r"pair ada: the template engine needs a structured fact"),
    ({"attribute": ""}, r"pair ada: the template engine needs a structured fact"),
    ({"facts": {"major": "Maths", "birth_city": "Paris"}},
     r"facts\['birth_city'\] is 'Paris' but the answer"),
    ({"facts": {"major": " "}}, r"pair ada: fact 'major' has no value"),
])
def test_a_pair_without_the_structure_is_refused_by_name(update: dict[str, object], message: str) -> None:
    pair = QAPair(id="ada", question="Where was Ada born?", answer="London", subject="Ada King",
                  attribute="birth_city").model_copy(update=update)
    with pytest.raises(DistillInputRejected, match=message):
        template_distillate(pair, lens("template-bio"), 0)
    plain = QAPair(id="capital", question="What is the capital of France?", answer="Paris")
    with pytest.raises(DistillInputRejected, match=r"pair capital: .*use the llm engine"):
        template_distillate(plain, lens("template-fact"), 0)
    with pytest.raises(DistillInputRejected, match="sample must be at least 0"):
        template_distillate(pair, lens("template-bio"), -1)
