"""Shift: what the per-example shift measurements say, e.g. the verdict on the compatibility
hypothesis (verdict.py), from the plain numbers a measurement job reports."""
