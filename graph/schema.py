"""Uniqueness constraints on every node label's and relationship type's `id`, created idempotently.

A constraint is also the index MERGE uses to find a node by id, so projecting stays fast as
the graph grows. `Activity` and `Entity` (PROV roles) get none: they label nodes of several
kinds whose ids live in different namespaces.
"""

from __future__ import annotations

import neo4j
from neo4j.exceptions import ClientError

from graph.errors import translated

NODE_LABELS: tuple[str, ...] = (
    "Experiment",
    "Run",
    "Parameter",
    "ParameterValue",
    "Benchmark",
    "Score",
    "Source",
    "Agent",
    "Ranking",
    "Design",
    "Outcome",
    "Projection",
    "Measurement",
    "ModelState",
    "Dataset",
    "Example",
    "Volatility",
    "Verdict",
    "Lens",
    "QAPair",
    "Distillation",
    "Distillate",
    "Cloud",
    "Model",
    "Judgement",
)

RELATIONSHIP_TYPES: tuple[str, ...] = (
    "PART_OF",
    "USED_VALUE",
    "VALUE_OF",
    "WAS_GENERATED_BY",
    "ON_BENCHMARK",
    "REPORTED_IN",
    "WAS_ASSOCIATED_WITH",
    "WAS_DERIVED_FROM",
    "USED_RUN",
    "RANKS",
    "FOR_BENCHMARK",
    "ABOUT",
    "DESIGNS",
    "ENDED",
    "USED_MODEL",
    "MEASURED_ON",
    "PROBED_WITH",
    "MEASURED",
    "SUMMARIZES",
    "OF_DATASET",
    "TRACKED_IN",
    "OF",
    "CONTAINS",
    "THROUGH",
    "GENERATED_BY",
    "DUPLICATE_OF",
    "JUDGED",
)


def constraint_names() -> list[str]:
    """The constraints' names, in the order of `constraint_statements`."""
    return [f"knobs_{label.lower()}_id" for label in NODE_LABELS] + [
        f"knobs_rel_{rel_type.lower()}_id" for rel_type in RELATIONSHIP_TYPES
    ]


def constraint_statements() -> list[str]:
    """The CREATE CONSTRAINT ... IF NOT EXISTS statements, one per label and type."""
    nodes = [
        f"CREATE CONSTRAINT knobs_{label.lower()}_id IF NOT EXISTS "
        f"FOR (n:{label}) REQUIRE n.id IS UNIQUE"
        for label in NODE_LABELS
    ]
    rels = [
        f"CREATE CONSTRAINT knobs_rel_{rel_type.lower()}_id IF NOT EXISTS "
        f"FOR ()-[r:{rel_type}]-() REQUIRE r.id IS UNIQUE"
        for rel_type in RELATIONSHIP_TYPES
    ]
    return nodes + rels


def ensure_schema(driver: neo4j.Driver, database: str = "neo4j") -> None:
    """Create every constraint that is missing; safe to call any number of times, concurrently."""
    # "An equivalent constraint already exists" is the expected answer after the first call.
    quiet = [neo4j.NotificationDisabledClassification.SCHEMA]
    with translated("creating the graph's constraints"), driver.session(
        database=database, notifications_disabled_classifications=quiet
    ) as session:
        # Usually all exist: one read instead of 52 schema commands, since a projector (one per
        # `knobs rank` catch-up) pays this before its first batch.
        present = {record["name"] for record in session.run("SHOW CONSTRAINTS YIELD name RETURN name")}
        for name, statement in zip(constraint_names(), constraint_statements(), strict=True):
            if name in present:
                continue
            try:
                session.run(statement).consume()
            except ClientError as exc:
                # Two processes creating the same constraint at once: the loser sees this.
                if exc.code and "EquivalentSchemaRuleAlreadyExists" in exc.code:
                    continue
                raise
        # Schema changes come online asynchronously; MERGE must not race an index build.
        session.run("CALL db.awaitIndexes(300)").consume()

