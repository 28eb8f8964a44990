"""Importers: results produced elsewhere become events."""
