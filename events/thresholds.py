"""The default thresholds of a distillation's checks (events.models.distillation.Checks).

Apart from the models so that `knobs distill --help` can show them without importing
events.models (which builds every event model: a tenth of a second at start-up).
"""

from __future__ import annotations

MIN_SIMILARITY = 0.35
"""For pairs without a known answer: the least cosine to the source a distillate must keep."""
DUPLICATE_COSINE = 0.95
"""Within a pair's cloud, above this cosine a distillate is a duplicate of one kept before it."""
