"""The embedded path: a whole task on one machine.

* ``runtime``: :class:`~edgefed.workflows.embedded.runtime.EmbeddedRuntime`, the store, engine and
  warm step workers behind the driver's ``RoundExecutor``;
* ``engine``: executes Argo Workflow documents (the very documents a cluster runs);
* ``store``: the embedded S3 store (SeaweedFS), its process and its identities;
* ``demo``: ``make demo``.

Importing this package imports none of them (the engine imports nothing of edgefed's control plane).
"""
