"""Not shipped (not in the wheel): the fits, generators and harnesses that write data/ files.

Each generated file has one writer here: ``python3 -m tools.calibrate --write`` writes
data/calibration/overhead_fit.toml, ``python3 -m tools.flagsgen WHEEL`` a data/flags list.
"""
