"""Aggregation strategies: one algorithm per module, paper cited; pure NumPy kernels, no I/O."""
