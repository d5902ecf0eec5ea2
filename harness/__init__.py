"""meter-harness: the METER ablation grid, from grid file to the paper's tables.

Importing this package imports no torch; heavy modules load when a command needs them.
"""

__version__ = "0.1.0"
