"""Analyses over runs and scores: rankings of knobs, their ranges and uncertainty."""
