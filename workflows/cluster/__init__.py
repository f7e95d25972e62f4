"""The cluster path: a task's rounds on Kubernetes, through the Argo server.

* ``transport``: Hera's ``WorkflowsService`` behind one retry policy, the token kept out of sight;
* ``executor``: :class:`ArgoExecutor` creates and watches round workflows (a ``RoundExecutor``);
* ``history``: :class:`ArgoHistory`, resume from Argo's record of succeeded rounds;
* ``submit``: :func:`submit_task`, the loop; ``errors``: one exception family.

Nothing here imports the embedded runtime, and importing the package is cheap (Hera's models load
on first use).
"""
