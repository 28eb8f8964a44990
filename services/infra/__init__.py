"""Local services a project runs under $KNOBS_HOME: Neo4j and PostgreSQL, on free ports."""
