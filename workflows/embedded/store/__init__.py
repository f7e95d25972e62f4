"""The embedded S3 store (SeaweedFS ``weed mini``): the process supervisor and the identities.

* ``server``: :class:`EmbeddedStore`, the one object commands use (start/stop, identities, buckets);
* ``supervisor``: the ``weed mini`` process (command line, ports, readiness, stop);
* ``identities``: who may do what (:func:`identity_actions`) and the 0600 key files.
"""

from edgefed.workflows.embedded.store.errors import StoreError
from edgefed.workflows.embedded.store.identities import Credentials, identity_actions, validate_edge
from edgefed.workflows.embedded.store.server import EmbeddedStore
from edgefed.workflows.embedded.store.supervisor import GRPC_OFFSET, SERVICES

__all__ = [
    "GRPC_OFFSET",
    "SERVICES",
    "Credentials",
    "EmbeddedStore",
    "StoreError",
    "identity_actions",
    "validate_edge",
]
