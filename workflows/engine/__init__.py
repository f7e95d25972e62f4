"""Embedded engine: executes an Argo Workflow document on this machine."""
