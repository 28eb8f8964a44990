"""Who may do what, and what is up: API bearer tokens with their scopes, and health of the parts."""
