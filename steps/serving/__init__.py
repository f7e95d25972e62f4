"""The joint inference service: :mod:`.model` (a served version), :mod:`.app` (the edge and cloud HTTP apps).

``python -m edgefed.steps.serving edge|cloud ...`` runs one side (the image's Deployments and ``edgefed serve``
start it so); TensorFlow lives here, in the data plane.
"""
