"""A synthetic biographies corpus with known ground truth, after "Physics of Language Models 3.1".

N people, each with six attributes drawn from the fixed lists below, rendered as short
biographies in several templates, plus question-answer pairs per attribute. A share of the
people (`qa_fraction`) has its QA pairs in the training data; the rest only have
biographies, so answering questions about them means extracting knowledge the model only
read in prose. Everything is a pure function of the arguments: same seed, same corpus.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from workers.data.corpus import Corpus, QAPair

FIRST_NAMES: tuple[str, ...] = (
    "Anya", "Bruno", "Celia", "Dorian", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jasper",
    "Kira", "Lionel", "Mara", "Nico", "Olga", "Pavel", "Quinn", "Rosa", "Silas", "Tessa",
    "Ulric", "Vera", "Wendell", "Xenia", "Yusuf", "Zora", "Amos", "Beatrix", "Cyrus", "Delia",
    "Emil", "Freya", "Gideon", "Hazel", "Ivo", "Juno", "Kasper", "Leona", "Milo", "Nadia",
    "Otto", "Petra", "Rafael", "Sabine", "Tobias", "Ursula", "Viktor", "Wilma", "Yara", "Zeno",
    "Adele", "Boris", "Carmen", "Dmitri", "Edith", "Fabian", "Gloria", "Henrik", "Ida", "Joel",
    "Klara", "Lucas", "Mirela", "Nils", "Octavia", "Pablo", "Rhea", "Stellan", "Thea", "Uma",
    "Vincent", "Willa", "Ximena", "Yorick", "Zelda", "Alma", "Basil", "Cora", "Dante", "Esme",
    "Flint", "Gemma", "Harvey", "Iris", "Jonah", "Kai", "Lorna", "Magnus", "Nell", "Orson",
    "Pia", "Rowan", "Signe", "Tariq", "Una", "Vaughn", "Wren", "Yvette", "Zane", "Abel",
)
MIDDLE_NAMES: tuple[str, ...] = (
    "Briar", "Cole", "Dale", "Ember", "Flynn", "Gray", "Haven", "Isle", "Jade", "Kent",
    "Lane", "Moss", "North", "Oak", "Pike", "Quill", "Reed", "Sage", "Thorn", "Vale",
    "West", "Ash", "Birch", "Clay", "Dune", "Fern", "Glen", "Heath", "Ivy", "Jay",
    "Knox", "Lark", "Marsh", "Nash", "Onyx", "Pearl", "Rain", "Shore", "Tate", "Umber",
    "Vance", "Wilde", "Yew", "Zephyr", "Arden", "Blaine", "Cove", "Drew", "Ellis", "Frost",
    "Grove", "Hollis", "Indigo", "June", "Kestrel", "Linden", "Merritt", "Noel", "Orrin", "Perry",
)
# Last names are compounds, so a short module still yields enough distinct full names
# (100 * 60 * 30 * 20 = 3.6M) for the largest corpus the contract allows (1M people).
LAST_NAME_HEADS: tuple[str, ...] = (
    "Ash", "Black", "Bright", "Brook", "Cliff", "Cold", "Crane", "Dark", "Eagle", "Fair",
    "Fox", "Gold", "Green", "Hart", "Hawk", "Iron", "Kings", "Lake", "Long", "Marsh",
    "Mill", "Moon", "Oak", "Red", "Rose", "Silver", "Stone", "Storm", "West", "Wolf",
)
LAST_NAME_TAILS: tuple[str, ...] = (
    "wood", "field", "forger", "ridge", "water", "stone", "brook", "well", "more", "ford",
    "worth", "ley", "ton", "by", "croft", "hill", "man", "smith", "ward", "gate",
)
CITIES: tuple[str, ...] = (
    "Princeton, NJ", "Austin, TX", "Boise, ID", "Portland, OR", "Madison, WI", "Tucson, AZ",
    "Raleigh, NC", "Savannah, GA", "Omaha, NE", "Spokane, WA", "Dayton, OH", "Fresno, CA",
    "Reno, NV", "Tulsa, OK", "Mobile, AL", "Albany, NY", "Duluth, MN", "Provo, UT",
    "Eugene, OR", "Salem, MA", "Billings, MT", "Fargo, ND", "Wichita, KS", "Lansing, MI",
    "Durham, NC", "Boulder, CO", "Burlington, VT", "Bangor, ME", "Topeka, KS", "Akron, OH",
    "Macon, GA", "Erie, PA", "Laredo, TX", "Ithaca, NY", "Juneau, AK", "Hilo, HI",
    "Pueblo, CO", "Ogden, UT", "Biloxi, MS", "Dover, DE",
)
UNIVERSITIES: tuple[str, ...] = (
    "Massachusetts Institute of Technology", "Stanford University", "University of Michigan",
    "Rice University", "Duke University", "Cornell University", "Brown University",
    "University of Texas at Austin", "Purdue University", "Tufts University",
    "University of Oregon", "Emory University", "Tulane University", "Boston University",
    "University of Arizona", "Ohio State University", "University of Utah", "Yale University",
    "Georgetown University", "University of Florida", "Vanderbilt University",
    "University of Iowa", "Clemson University", "Baylor University", "Auburn University",
    "Dartmouth College", "Princeton University", "University of Kansas",
    "Northwestern University", "University of Vermont",
)
MAJORS: tuple[str, ...] = (
    "Communications", "Mechanical Engineering", "Biology", "Economics", "Philosophy",
    "Computer Science", "Chemistry", "History", "Architecture", "Mathematics", "Physics",
    "Linguistics", "Psychology", "Nursing", "Music", "Geology", "Sociology", "Accounting",
    "Astronomy", "Civil Engineering", "Marine Biology", "Statistics", "Journalism",
    "Anthropology", "Graphic Design", "Political Science", "Botany", "Finance",
)
# An employer's city is its headquarters: knowing the employer determines the city.
EMPLOYERS: dict[str, str] = {
    "Meta Platforms": "Menlo Park, CA", "Northwind Traders": "Seattle, WA",
    "Blue Harbor Shipping": "Norfolk, VA", "Cobalt Robotics": "Pittsburgh, PA",
    "Evergreen Foods": "Boise, ID", "Granite Bank": "Charlotte, NC",
    "Helios Energy": "Phoenix, AZ", "Juniper Health": "Nashville, TN",
    "Kestrel Aerospace": "Wichita, KS", "Lumen Optics": "Rochester, NY",
    "Maple Insurance": "Hartford, CT", "Nimbus Software": "Austin, TX",
    "Orchard Publishing": "Boston, MA", "Pinnacle Motors": "Detroit, MI",
    "Quarry Materials": "Denver, CO", "Redwood Pharmaceuticals": "San Diego, CA",
    "Summit Outfitters": "Salt Lake City, UT", "Tidewater Logistics": "Memphis, TN",
    "Union Textiles": "Greenville, SC", "Vista Media": "Los Angeles, CA",
    "Willow Furniture": "Grand Rapids, MI", "Yellowstone Mining": "Billings, MT",
    "Zenith Telecom": "Dallas, TX", "Atlas Steelworks": "Cleveland, OH",
    "Beacon Hospitals": "Baltimore, MD", "Cascade Breweries": "Portland, OR",
    "Delta Semiconductors": "San Jose, CA", "Ember Games": "Raleigh, NC",
    "Falcon Airlines": "Atlanta, GA", "Glacier Water": "Anchorage, AK",
}
MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)

ATTRIBUTES: tuple[str, ...] = (
    "birth_date", "birth_city", "university", "major", "employer", "employer_city",
)
# Sentence templates per attribute. Training renderings draw from TRAIN_TEMPLATES only; the
# held-out documents use HELDOUT_TEMPLATES, which training never shows, so heldout_loss
# measures whether the model learned the facts and the language rather than the wording.
# Every sentence names the person in full: PLM 3.1's "fullname" augmentation, which makes
# facts extractable by question far more readily than pronouns do.
TRAIN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth_date": (
        "{name} was born on {value}.",
        "{name} came into this world on {value}.",
        "{name}'s birthday falls on {value}.",
        "{name} was welcomed into the world on {value}.",
        "The birth of {name} took place on {value}.",
        "{name} entered life on {value}.",
    ),
    "birth_city": (
        "{name} was born in {value}.",
        "{name} spent early years in {value}.",
        "{name} hails from {value}.",
        "{name}'s hometown is {value}.",
        "{name} was raised in {value}.",
        "{name} grew up in {value}.",
    ),
    "university": (
        "{name} studied at {value}.",
        "{name} graduated from {value}.",
        "{name} attended {value}.",
        "{name} received an education at {value}.",
        "{name} is an alum of {value}.",
        "{name} completed a degree at {value}.",
    ),
    "major": (
        "{name} majored in {value}.",
        "{name} focused on {value} at university.",
        "{name} specialized in {value}.",
        "{name} chose {value} as a field of study.",
        "{name} pursued a degree in {value}.",
        "{name} completed coursework in {value}.",
    ),
    "employer": (
        "{name} works for {value}.",
        "{name} is employed by {value}.",
        "{name} holds a job at {value}.",
        "{name} has a career at {value}.",
        "{name} earns a living at {value}.",
        "{name} is on the staff of {value}.",
    ),
    "employer_city": (
        "{name} works in {value}.",
        "{name} commutes to an office in {value}.",
        "{name} is based in {value} for work.",
        "{name} has a workplace in {value}.",
        "{name} goes to work in {value}.",
        "{name} practices a profession in {value}.",
    ),
}
HELDOUT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth_date": (
        "{name} first opened their eyes on {value}.",
        "Records list {value} as the date of birth of {name}.",
    ),
    "birth_city": ("The birthplace of {name} is {value}.", "{name} originally comes from {value}."),
    "university": ("{name} enrolled at {value}.", "{name} earned a diploma from {value}."),
    "major": ("{name} devoted college years to {value}.", "The academic focus of {name} was {value}."),
    "employer": ("{name} draws a salary from {value}.", "The employer of {name} is {value}."),
    "employer_city": ("{name} reports to an office in {value}.", "The workplace of {name} lies in {value}."),
}
# One question per attribute, as in PLM 3.1: the benchmark asks exactly what training asked.
QUESTIONS: dict[str, str] = {
    "birth_date": "What is the birth date of {name}?",
    "birth_city": "What is the birth city of {name}?",
    "university": "Which university did {name} attend?",
    "major": "What did {name} study?",
    "employer": "Which company does {name} work for?",
    "employer_city": "Where does {name} work?",
}
# Held-out documents render at most this many people: enough for a tight heldout_loss,
# few enough that evaluation stays a second or two on a CPU for any n_people.
HELDOUT_PEOPLE = 256
DATA_FORMATS: tuple[str, ...] = ("plain", "qa", "mixed")


@dataclass(frozen=True)
class Person:
    """One person of the world and the ground truth about them."""

    index: int
    name: str
    attributes: dict[str, str]  # attribute name -> value, in ATTRIBUTES order
    qa_in_training: bool


def make_people(n_people: int, qa_fraction: float, seed: int) -> list[Person]:
    """The world: person i depends only on (seed, i) and the people before it (name clashes).

    So the first 100 people of a 200-person world are the 100 people of a 100-person world,
    and worlds of different sizes share their people.
    """
    capacity = len(FIRST_NAMES) * len(MIDDLE_NAMES) * len(LAST_NAME_HEADS) * len(LAST_NAME_TAILS)
    if n_people > capacity // 2:
        raise ValueError(f"n_people={n_people} exceeds what the name lists support ({capacity // 2})")
    employers = list(EMPLOYERS)
    taken: set[str] = set()
    drawn: list[tuple[str, dict[str, str], float]] = []
    for i in range(n_people):
        # A string seed hashes with SHA-512: stable across processes and Python versions.
        rng = random.Random(f"biographies:{seed}:person:{i}")
        order_key = rng.random()  # decides the QA split, drawn first so it never shifts
        while True:
            name = " ".join((
                rng.choice(FIRST_NAMES),
                rng.choice(MIDDLE_NAMES),
                rng.choice(LAST_NAME_HEADS) + rng.choice(LAST_NAME_TAILS),
            ))
            if name not in taken:
                break
        taken.add(name)
        employer = rng.choice(employers)
        attributes = {
            "birth_date": f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(1940, 2005)}",
            "birth_city": rng.choice(CITIES),
            "university": rng.choice(UNIVERSITIES),
            "major": rng.choice(MAJORS),
            "employer": employer,
            "employer_city": EMPLOYERS[employer],
        }
        drawn.append((name, attributes, order_key))
    # Exactly round(qa_fraction * n) people have QA in training: those with the smallest keys,
    # so raising qa_fraction only adds people to the QA group.
    n_qa = round(qa_fraction * n_people)
    qa_people = set(sorted(range(n_people), key=lambda i: drawn[i][2])[:n_qa])
    return [
        Person(index=i, name=name, attributes=attributes, qa_in_training=i in qa_people)
        for i, (name, attributes, _) in enumerate(drawn)
    ]


def qa_pairs(person: Person) -> list[QAPair]:
    """The person's question-answer pairs, one per attribute."""
    return [
        QAPair(
            person=person.index,
            attribute=attribute,
            prompt=f"Q: {QUESTIONS[attribute].format(name=person.name)}\nA:",
            answer=person.attributes[attribute],
        )
        for attribute in ATTRIBUTES
    ]


def render_biographies(
    person: Person, templates: dict[str, tuple[str, ...]], renderings: int, rng: random.Random
) -> list[list[tuple[str, str]]]:
    """`renderings` lists of (attribute, sentence), each in a shuffled sentence order.

    Rendering r uses each attribute's r-th template of a per-person shuffled list, so the
    first len(templates) renderings all differ; draws are sequential, so asking for more
    renderings only appends new ones.
    """
    orders = {}
    for attribute in ATTRIBUTES:
        orders[attribute] = list(templates[attribute])
        rng.shuffle(orders[attribute])
    renders = []
    for r in range(renderings):
        sentences = [
            (a, orders[a][r % len(orders[a])].format(name=person.name, value=person.attributes[a]))
            for a in ATTRIBUTES
        ]
        rng.shuffle(sentences)
        renders.append(sentences)
    return renders


@dataclass(frozen=True)
class Biographies(Corpus):
    """The biographies corpus, with the world it was rendered from."""

    people: tuple[Person, ...] = ()


def generate(
    *,
    n_people: int = 200,
    qa_fraction: float = 0.5,
    data_format: str = "mixed",
    repetitions: int = 1,
    seed: int = 0,
    condition: str | None = None,
    copies: int | None = None,
    rewrites: Mapping[str, Sequence[str]] | None = None,
) -> Biographies:
    """Render the corpus.

    - `plain`: biographies only (nobody's QA pairs are in training).
    - `qa`: biographies, plus one QA document per rendering of each QA-group person.
    - `mixed`: biographies of QA-group people carry their QA pairs interleaved, each pair
      right before the sentence stating its fact (after it, the answer could be copied from
      the context and training would never ask the model to recall it); others' biographies
      are plain.

    The QA group is the same in every format, so `qa_exact_match_seen` always asks about the
    same people (under `plain` it measures whether prose alone lets the model answer them).

    `condition` with `copies` (K) replaces `repetitions` (the repetition experiment): each
    person's biography appears K times, as `person_renderings` says; `rewrites` (full name ->
    texts, from a distillation's cloud) supplies the lenses. Rewrites are whole texts, not
    sentences, so `mixed` interleaving cannot apply: the QA group's pairs go in documents of
    their own, one per copy, as under `qa`.
    """
    if data_format not in DATA_FORMATS:
        raise ValueError(f"unknown data format {data_format!r}: use one of {DATA_FORMATS}")
    if repetitions < 1:
        raise ValueError("repetitions must be at least 1")
    people = make_people(n_people, qa_fraction, seed)
    train: list[str] = []
    qa_train: list[QAPair] = []
    seen: list[QAPair] = []
    unseen: list[QAPair] = []
    for person in people:
        pairs = {pair.attribute: pair for pair in qa_pairs(person)}
        (seen if person.qa_in_training else unseen).extend(pairs.values())
        with_qa = person.qa_in_training and data_format != "plain"
        if with_qa:
            qa_train.extend(pairs.values())
        rng = random.Random(f"biographies:{seed}:render:{person.index}")
        if condition is not None:
            texts = person_renderings(person, condition, copies or 0, rewrites or {}, rng)
            train.extend(texts)
            if with_qa:
                for _ in texts:
                    order = list(pairs.values())
                    rng.shuffle(order)
                    train.append("\n".join(pair.text for pair in order))
            continue
        for sentences in render_biographies(person, TRAIN_TEMPLATES, repetitions, rng):
            if with_qa and data_format == "mixed":
                train.append("\n".join(f"{pairs[a].text}\n{s}" for a, s in sentences))
                continue
            train.append(" ".join(s for _, s in sentences))
            if with_qa:  # data_format == "qa": the same pairs, in a document of their own
                order = list(pairs.values())
                rng.shuffle(order)
                train.append("\n".join(pair.text for pair in order))
    heldout = []
    for person in people[:HELDOUT_PEOPLE]:
        rng = random.Random(f"biographies:{seed}:heldout:{person.index}")
        (sentences,) = render_biographies(person, HELDOUT_TEMPLATES, 1, rng)
        heldout.append(" ".join(s for _, s in sentences))
    unavailable = {}
    if not seen:
        unavailable["qa_exact_match_seen"] = f"qa_fraction={qa_fraction} leaves nobody in the QA group"
    if not unseen:
        unavailable["qa_exact_match"] = f"qa_fraction={qa_fraction} leaves nobody out of the QA group"
    shape = f"repetitions={repetitions}" if condition is None else f"condition={condition}, K={copies}"
    return Biographies(
        name=f"biographies(n_people={n_people}, qa_fraction={qa_fraction}, format={data_format}, "
        f"{shape}, seed={seed})",
        train=train,
        heldout=heldout,
        qa_train=qa_train,
        qa_eval_heldout=unseen,
        qa_eval_seen=seen,
        unavailable=unavailable,
        people=tuple(people),
    )


CONDITIONS: tuple[str, ...] = ("verbatim", "lenses", "mix")


def person_renderings(person: Person, condition: str, copies: int, rewrites: Mapping[str, Sequence[str]],
                      rng: random.Random) -> list[str]:
    """The K texts about `person` under a repetition condition.

    - `verbatim`: the person's first training rendering, the same text K times (reading one
      book K times);
    - `lenses`: the first K of the person's rewrites (K interpretations, none the original);
    - `mix`: ceil(K/2) copies of the rendering and the first K//2 rewrites.

    A person with fewer rewrites than the condition needs is an error naming them: a silently
    shorter list would hand that condition fewer exposures than the others.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}: use one of {CONDITIONS}")
    if copies < 1:
        raise ValueError("a condition needs K >= 1 copies per person")
    (sentences,) = render_biographies(person, TRAIN_TEMPLATES, 1, rng)
    original = " ".join(s for _, s in sentences)
    n_rewrites = {"verbatim": 0, "lenses": copies, "mix": copies // 2}[condition]
    own = list(rewrites.get(person.name, ()))
    if len(own) < n_rewrites:
        raise ValueError(
            f"condition {condition} with K={copies} needs {n_rewrites} rewrites of {person.name}, but "
            f"the cloud has {len(own)} accepted; distil more samples per pair (or lower K)")
    return [original] * (copies - n_rewrites) + own[:n_rewrites]


# --- variations on the world, for the compatibility test (workers/jobs/hypothesis.py) -------------
# None of these changes what `generate` renders; each is a pure function of its arguments.

# The same facts asked in words training never uses: does a fact learned through one question
# come out through another?
PARAPHRASED_QUESTIONS: dict[str, str] = {
    "birth_date": "On which day was {name} born?",
    "birth_city": "In which town was {name} born?",
    "university": "Where did {name} go to college?",
    "major": "Which subject did {name} major in?",
    "employer": "Who employs {name}?",
    "employer_city": "In which city is the job of {name}?",
}
# A format training never shows: one field of a record card per line.
RECORD_FIELDS: dict[str, str] = {
    "birth_date": "date of birth",
    "birth_city": "place of birth",
    "university": "alma mater",
    "major": "subject",
    "employer": "company",
    "employer_city": "office",
}


def paraphrased_qa_pairs(person: Person) -> list[QAPair]:
    """The person's facts asked with PARAPHRASED_QUESTIONS, one per attribute."""
    return [
        QAPair(person=person.index, attribute=attribute,
               prompt=f"Q: {PARAPHRASED_QUESTIONS[attribute].format(name=person.name)}\nA:",
               answer=person.attributes[attribute])
        for attribute in ATTRIBUTES
    ]


def record_card_pairs(person: Person) -> list[QAPair]:
    """The person's facts as record-card lines, `[record] NAME :: FIELD = VALUE`, one per attribute."""
    return [
        QAPair(person=person.index, attribute=attribute,
               prompt=f"[record] {person.name} :: {RECORD_FIELDS[attribute]} =",
               answer=person.attributes[attribute])
        for attribute in ATTRIBUTES
    ]


def altered_person(person: Person, seed: int) -> Person:
    """The same person with every attribute changed to another value of its kind. The world's
    rule holds: the employer_city is the new employer's headquarters (an employer is drawn
    whose city differs from the old one too)."""
    rng = random.Random(f"biographies:{seed}:altered:{person.index}")
    old = person.attributes
    employer = rng.choice([e for e, city in EMPLOYERS.items()
                           if e != old["employer"] and city != old["employer_city"]])
    while True:
        birth_date = f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(1940, 2005)}"
        if birth_date != old["birth_date"]:
            break
    attributes = {
        "birth_date": birth_date,
        "birth_city": rng.choice([c for c in CITIES if c != old["birth_city"]]),
        "university": rng.choice([u for u in UNIVERSITIES if u != old["university"]]),
        "major": rng.choice([m for m in MAJORS if m != old["major"]]),
        "employer": employer,
        "employer_city": EMPLOYERS[employer],
    }
    return Person(index=person.index, name=person.name, attributes=attributes,
                  qa_in_training=person.qa_in_training)


def shuffled_answers(people: list[Person], seed: int, attempts: int = 1000) -> list[Person]:
    """The people with each attribute's values permuted across them: per attribute, the values
    are the same multiset, each moved to someone else where the values allow it (of `attempts`
    random permutations, the first that leaves nobody with their own value, else the one that
    leaves fewest). Attributes are permuted independently, so the world's employer -> city
    rule is broken too, as answers shuffled by attribute would break it."""
    if len(people) < 2:
        raise ValueError("shuffling answers needs at least two people")
    rng = random.Random(f"biographies:{seed}:shuffled:{len(people)}")
    columns: dict[str, list[str]] = {}
    for attribute in ATTRIBUTES:
        values = [p.attributes[attribute] for p in people]
        best: list[str] = values
        best_kept = len(values) + 1
        for _ in range(attempts):
            order = list(range(len(values)))
            rng.shuffle(order)
            candidate = [values[j] for j in order]
            kept = sum(a == b for a, b in zip(candidate, values, strict=True))
            if kept < best_kept:
                best, best_kept = candidate, kept
            if kept == 0:
                break
        columns[attribute] = best
    return [Person(index=p.index, name=p.name,
                   attributes={a: columns[a][row] for a in ATTRIBUTES},
                   qa_in_training=p.qa_in_training)
            for row, p in enumerate(people)]
