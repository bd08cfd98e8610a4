"""Capacity planning for serving MiniMax-M2.5 and its MoE kin with vLLM.

The public entry points are :func:`planner.size.size` (will it fit, on how many GPUs) and
:func:`planner.memory.plan_memory` (one layout, mirroring vLLM's own arithmetic).  Nothing here
imports vLLM, torch or matplotlib at module level: the CLI must answer in well under a second.
"""

__version__ = "0.1.0"
