"""Flat job modules, one per job: train (with evaluate and cost accounting beside it).

Before anything imports torch: OpenMP threads that spin while waiting make every small op
tens of times slower as soon as another process shares the cores (measured: a tiny-model
training step went from 0.1 s to 1.2 s on a busy 2-core machine), so let them sleep instead.
Set OMP_WAIT_POLICY yourself to override; it only takes effect if torch is not loaded yet.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
