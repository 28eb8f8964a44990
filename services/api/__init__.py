"""The HTTP API: thin routes over services/ functions."""
