"""The performance half of the planner: benchmark loaders (bench), fitted curves (fit), SLO planning
(slo), the per-step cost model (step, its rates from kernels measured per GPU family), the scheduler-level
simulation (sim), the stored calibration (calibration; usercal refits it on a user's own runs), measured
tables and the simulation's error on them (tables), the cross-GPU comparison (compare) and plots (plot).
The fit over the public tables and the accuracy harnesses are not shipped (tools/perf_fit.py, benchmarks/).

Kept apart from memory sizing (planner/) so that each model is readable on its own: the memory model
answers "does it fit", this package "how fast, at what load, for what cost".
"""
