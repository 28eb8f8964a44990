"""The template engine: a deterministic, LLM-free lens engine for controlled experiments.

It rewrites a structured fact (a pair with `subject`, `attribute` and `facts`, as the
biographies source gives) with the augmentations of Allen-Zhu & Li, *Physics of Language
Models 3.1*: several sentence templates per attribute (multiM), the sentences in a permuted
order (permute), and the full name in every sentence (fullname). Its distillates are the same
`DistillateGenerated` events as a model's, with `engine: template`.

How a lens applies here. The template engine never reads a lens's prompt: a lens chooses the
*shape* and seeds the draw. `template-fact` writes the asked fact alone, in one sentence; every
other lens (`template-bio`, the builtin for this engine, or any other) writes a biography: the
asked fact and each of the subject's other facts, one sentence each, in a permuted order. The
draw is seeded by (lens version, pair id, sample), so the same triple always gives the same
text, another lens gives another cloud, and an edited lens gives new text, as its new version
says it should.

Samples: within a cycle of K samples (K, the fewest templates any of the pair's attributes
has), sample r uses each attribute's r-th template of a per-(lens, pair, cycle) shuffled list,
so no two samples of a cycle share any sentence's wording; the order is drawn per sample.
The templates are none of `biographies.HELDOUT_TEMPLATES` (held-out loss stays held out) and
none of its training templates (a distillate is new wording, not a copy of the corpus).
"""

from __future__ import annotations

import random

from events.models.distillation import DistillInputRejected, Lens, QAPair

FACT_ONLY_LENSES = frozenset({"template-fact"})

TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth_date": (
        "{name} was born on the day of {value}.",
        "The date of birth of {name} is {value}.",
        "{name} celebrates a birthday every year on the anniversary of {value}.",
        "On {value}, {name} was born.",
    ),
    "birth_city": (
        "{name} was born in the city of {value}.",
        "The city where {name} was born is {value}.",
        "{name} first lived in {value}, the city of birth.",
        "{value} is the birthplace of {name}.",
    ),
    "university": (
        "{name} went to university at {value}.",
        "The university {name} attended is {value}.",
        "{name} spent student years at {value}.",
        "{value} counts {name} among its graduates.",
    ),
    "major": (
        "{name} studied {value} at university.",
        "The field {name} studied is {value}.",
        "{name} earned a degree in {value}.",
        "{value} was the major of {name}.",
    ),
    "employer": (
        "{name} works at {value}.",
        "The employer of {name} is the company {value}.",
        "{name} is on the payroll of {value}.",
        "{value} employs {name}.",
    ),
    "employer_city": (
        "{name} works in the city of {value}.",
        "The office of {name} is in {value}.",
        "{name} has a job based in {value}.",
        "{value} is the city where {name} works.",
    ),
}
# An attribute the table does not know (a JSONL pair's own structure) is stated generically.
GENERIC: tuple[str, ...] = (
    "The {attribute} of {name} is {value}.",
    "{name} has {value} as {attribute}.",
    "For {name}, the {attribute} is {value}.",
)


def template_distillate(pair: QAPair, lens: Lens, sample: int) -> str:
    """The `sample`-th rewrite of `pair` through `lens`: always states the answer exactly as
    written (a value is never re-cased, even where it opens a sentence), names the
    subject in full in every sentence, and is the same text for the same (pair, lens version,
    sample)."""
    if sample < 0:
        raise DistillInputRejected(f"pair {pair.id}: sample must be at least 0, not {sample}")
    facts = _facts(pair)
    attributes = [pair.attribute] if lens.name in FACT_ONLY_LENSES else list(facts)
    cycle_length = min(len(_templates(a)) for a in attributes)
    cycle, r = divmod(sample, cycle_length)
    shuffle_rng = random.Random(f"distill-template:{lens.version}:{pair.id}:cycle:{cycle}")
    sentences = []
    for attribute in attributes:
        templates = list(_templates(attribute))
        shuffle_rng.shuffle(templates)
        sentences.append(templates[r % len(templates)].format(
            name=pair.subject, value=facts[attribute], attribute=attribute.replace("_", " ")))
    order_rng = random.Random(f"distill-template:{lens.version}:{pair.id}:order:{sample}")
    order_rng.shuffle(sentences)
    return " ".join(sentences)


def _facts(pair: QAPair) -> dict[str, str]:
    """The subject's facts with the asked one as the pair states it; refuses a pair without the
    structure, or whose facts contradict its answer."""
    problem = pair.template_problem()
    if problem is not None:
        raise DistillInputRejected(problem)
    return {**pair.facts, pair.attribute: pair.answer}


def _templates(attribute: str) -> tuple[str, ...]:
    return TEMPLATES.get(attribute, GENERIC)

