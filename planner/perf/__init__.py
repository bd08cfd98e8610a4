"""The performance half of the planner: benchmark loaders, fitted curves, SLO planning, the per-step
cost model and its cross-GPU comparison.

Kept apart from memory sizing (planner/) so that each model is readable on its own: the memory model
answers "does it fit", this package "how fast, at what load, for what cost".
"""
