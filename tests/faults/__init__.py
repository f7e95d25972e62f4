"""``make faults``: faults injected into real embedded runs, and what each left in the model registry."""
