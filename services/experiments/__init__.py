"""Experiments we design ourselves: specs, designs (ofat, grid, Morris, Sobol), cost estimates."""

DEFAULT_FLOPS_PER_SECOND = 2e9
"""A laptop CPU's sustained rate on small matmuls; pass a measured rate for a GPU. Here, not in
`cost`, so that `knobs --help` names it without importing the event models."""
