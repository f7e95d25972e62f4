#!/bin/sh
# Label the edge nodes of task heart-demo: each edge's steps run where its label is.
set -eu
kubectl label node edge-cleveland node-restriction.kubernetes.io/edgefed-edge=cleveland --overwrite
kubectl label node edge-hungary node-restriction.kubernetes.io/edgefed-edge=hungary --overwrite
kubectl label node edge-switzerland node-restriction.kubernetes.io/edgefed-edge=switzerland --overwrite
kubectl label node edge-va-long-beach node-restriction.kubernetes.io/edgefed-edge=va-long-beach --overwrite
