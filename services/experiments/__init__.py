"""Experiments we design ourselves: specs, designs (ofat, grid, Morris, Sobol), cost estimates."""
