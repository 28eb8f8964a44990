"""The verbatim-versus-lens experiment (capability 4): spec, preparation, report."""
