"""The performance half of the planner: benchmark loaders (bench), fitted curves (fit), SLO planning
(slo), the per-step cost model (step), the scheduler-level simulation (sim), efficiencies per GPU
architecture fitted on measured tables (efficiency, validation; usercal for a user's own runs), the
cross-GPU comparison (compare) and plots (plot).

Kept apart from memory sizing (planner/) so that each model is readable on its own: the memory model
answers "does it fit", this package "how fast, at what load, for what cost".
"""
