"""Capability 4: lens distillation — each question-answer pair rewritten through many lenses.

`lenses` reads the lens files (builtin and the user's), validates and versions them and picks
the ones a distillation asks for. The pairs themselves are read by the workers
(`workers/data/qa_sources.py`), which run the distillation; services reach them through the log.
"""
