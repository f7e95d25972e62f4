"""Control plane: FederatedTask spec -> Argo Workflows (Hera), submission, embedded engine, CLI."""
