"""Named queries' headers as the API and CLI read them: declared parameters, binding (no Neo4j)."""

from __future__ import annotations

import re

import pytest

from graph.queries import list_queries, load_query
from graph.readonly import _code_only
from services.queries.named import QueryParameterError, bind, decoded, parameters_of


def test_every_query_declares_exactly_the_parameters_its_cypher_uses() -> None:
    for q in list_queries():
        used = set(re.findall(r"\$([A-Za-z_]\w*)", _code_only(q.cypher)))
        assert {p.name for p in parameters_of(q)} == used, q.name


def test_optional_parameters_and_binding() -> None:
    influence = load_query("influence_range")
    declared = [(p.name, p.required) for p in parameters_of(influence)]
    assert declared == [("parameter", True), ("benchmark", False)]
    assert parameters_of(load_query("experiments")) == []
    assert bind(influence, {"parameter": "lr"}) == {"parameter": "lr", "benchmark": None}
    assert bind(influence, {"parameter": "lr", "benchmark": ""}) == {"parameter": "lr", "benchmark": None}
    with pytest.raises(QueryParameterError, match=r"needs parameter parameter; it takes parameter, "
                       r"benchmark \(optional\)"):
        bind(influence, {"benchmark": "bleu"})
    with pytest.raises(QueryParameterError, match="needs parameters experiment, run_id"):
        bind(load_query("rankings_using_run"), {})
    with pytest.raises(QueryParameterError, match="takes no parameter benchmrk"):
        bind(influence, {"parameter": "lr", "benchmrk": "bleu"})
    assert QueryParameterError("x").status_code == 400


def test_decoded_parses_json_text_columns_only() -> None:
    row = {"values": '[{"value": 1}]', "parameter": "[not json]", "knee": "1.5", "baseline": "{}",
           "parameters": [{"name": "lr", "values": "[]"}]}
    assert decoded(row) == {"values": [{"value": 1}], "parameter": "[not json]", "knee": "1.5",
                            "baseline": {}, "parameters": [{"name": "lr", "values": []}]}
