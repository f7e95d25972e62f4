"""``python -m edgefed.steps.serving edge|cloud``: run one side of the joint inference service with uvicorn.

Store identities come from the environment, as in every step (``EDGEFED_ACCESS_KEY``/``SECRET_KEY`` for the
cloud store; at the edge also ``EDGEFED_SITE_ACCESS_KEY``/``SITE_SECRET_KEY`` for its own store).
"""

from __future__ import annotations

import argparse
import os
import sys

from edgefed.steps.interface import StepExit
from edgefed.steps.store import Endpoint, StepError, client_from_env


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m edgefed.steps.serving")
    sides = p.add_subparsers(dest="side", required=True)
    for side in ("edge", "cloud"):
        s = sides.add_parser(side)
        s.add_argument("--task", required=True)
        s.add_argument("--store", required=True, help="the cloud store (the model registry)")
        s.add_argument("--host", default="127.0.0.1")
        s.add_argument("--port", type=int, default=8080)
        s.add_argument("--version", type=int, default=None, help="round to serve (default: the served one)")
    edge = sides.choices["edge"]
    edge.add_argument("--edge", required=True)
    edge.add_argument(
        "--site-store", required=True, help="the edge's own store (deployed model, hard examples)"
    )
    edge.add_argument("--cloud", default=None, help="the cloud service's URL (none: edge only)")
    edge.add_argument("--rule", default="confidence", choices=("confidence", "margin"))
    edge.add_argument("--threshold", type=float, default=0.8)
    edge.add_argument(
        "--source",
        default="deployed",
        choices=("deployed", "registry"),
        help="deployed: the version deployed into the edge's own store; registry: the served one",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parser().parse_args(argv)
    import uvicorn

    from edgefed.steps.registry import ModelRegistry
    from edgefed.steps.serving.app import EdgeSettings, cloud_app, edge_app
    from edgefed.steps.serving.model import from_edge_store, from_registry

    try:
        registry = ModelRegistry(client_from_env(Endpoint.parse(args.store)))
        if args.side == "cloud":
            model = from_registry(registry, args.task, args.version)
            app = cloud_app(model)
        else:
            site = client_from_env(Endpoint.parse(args.site_store), site=True)
            if args.source == "deployed" and args.version is None:
                model = from_edge_store(site, args.edge, args.task)
            else:
                model = from_registry(registry, args.task, args.version)
            settings = EdgeSettings(
                edge=args.edge, cloud_url=args.cloud, rule=args.rule, threshold=args.threshold, site=site
            )
            app = edge_app(model, settings)
    except StepError as err:
        print(f"serve {args.side}: error: {err}", file=sys.stderr)
        return err.exit_code
    print(
        f"serving round {model.round} of {model.task} ({args.side}) on http://{args.host}:{args.port}",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return StepExit.OK


if __name__ == "__main__":
    sys.exit(main())
