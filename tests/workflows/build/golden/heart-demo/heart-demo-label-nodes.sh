#!/bin/sh
# Label the edge nodes of task heart-demo: each edge's steps run where its label is.
set -eu
kubectl label node edge-cleveland edgefed.io/edge=cleveland --overwrite
kubectl label node edge-hungary edgefed.io/edge=hungary --overwrite
kubectl label node edge-switzerland edgefed.io/edge=switzerland --overwrite
kubectl label node edge-va-long-beach edgefed.io/edge=va-long-beach --overwrite
