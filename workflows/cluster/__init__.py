"""The cluster path: a task as one task Workflow on Kubernetes, through the Argo server.

* ``transport``: Hera's ``WorkflowsService`` behind one retry policy, the token kept out of sight;
* ``client``: :class:`ArgoClient`, templates created or updated, workflows created once, got, listed;
* ``view``: what Argo shows of a task, its task Workflows and rounds (``edgefed status``);
* ``watch``: :func:`watch_task`, a task Workflow polled to its end with its child rounds;
* ``submit``: :func:`submit_task`, templates + the task Workflow (or the live one), watched;
* ``errors``: one exception family.

Nothing here imports the embedded runtime, nor reads the model registry: a resubmitted task resumes
from the registry inside the cluster (its ``plan`` step), not from what Argo remembers. Importing
the package is cheap (Hera's models load on first use).
"""
