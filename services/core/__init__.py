"""The composition root: the connections one command or request uses (Context), settings, plugins
found by entry point, the code version, and the one error tree every domain package raises."""
