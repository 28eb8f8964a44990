"""The LLM judge's service side: check the experiment and the server, then have the workers grade
(README: LLM judge)."""
