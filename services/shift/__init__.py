"""Capability 3: how much each example and token moves a model, and what volatility predicts.

`measure` asks for a measurement (the workers do it and log every chunk), `figures` reads a
measurement back from the log, `tokens` draws one example's tokens shaded by saliency, and
`verdict` turns a hypothesis test's table into correlations, intervals and a verdict.
"""
