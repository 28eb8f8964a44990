"""Which knobs matter: rankings (one benchmark or a matrix), their evidence, audit and follow-up
specs; analysis/ holds the statistics they call (pure functions over observations)."""
