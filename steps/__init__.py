"""Data plane: code that runs inside a step. Knows nothing of Argo."""
