"""How long a job takes: generating distillates for N A4 pages and training on them, calibrated
from the runs knobs measured, and checked against every finished run (`knobs estimate`)."""
