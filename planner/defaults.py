"""What the planner sizes when the user names nothing: the product's model and its first GPU.

A module of its own so that the CLI's help texts can name them without importing the catalog
(which reads data/ and would slow every `--help`).
"""

DEFAULT_MODEL = "minimax-m2.5"
DEFAULT_GPU = "b200"
