"""The face of knobs: the doors (cli, api, mcp) over domain packages (ranking, importing, export,
access, experiments), which read the graph through queries and stand on core and infra.
Each package and what it may import: services/README.md."""
