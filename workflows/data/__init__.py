"""Data at the edges, seen from the control plane: ``seeding`` (packaged datasets into the edges' own
buckets) and ``check`` (the data contracts of a task's edges, without training)."""
