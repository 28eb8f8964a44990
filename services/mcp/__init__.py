"""`knobs mcp`: the Model Context Protocol server through which agents ask which knobs matter."""
