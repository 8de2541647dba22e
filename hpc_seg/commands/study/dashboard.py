"""``hpc-seg study dashboard STORAGE``: optuna-dashboard on 127.0.0.1, printing its URL."""

from __future__ import annotations

import argparse

NAME = "dashboard"
HELP = "serve optuna-dashboard for a search's storage (127.0.0.1 unless --host); Ctrl-C stops it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("storage", metavar="STORAGE",
                        help="search folder, study.db file, or database URL")
    parser.add_argument("--host", default="127.0.0.1",
                        help="bind address (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")


def run(args: argparse.Namespace) -> int:
    import logging

    from hpc_seg.errors import LaunchError
    from hpc_seg.hpo.storage import open_storage
    from hpc_seg.hpo.study_info import resolve_storage

    url = resolve_storage(args.storage)
    storage = open_storage(url)
    import optuna_dashboard

    print(f"optuna-dashboard: http://{args.host}:{args.port}/dashboard/  (Ctrl-C to stop)",
          flush=True)
    logging.getLogger(__name__).info("serving %s", url)
    try:
        optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    except OSError as exc:
        raise LaunchError(f"{args.host}:{args.port}: cannot serve the dashboard: {exc}; "
                          "pick another --port") from None
    return 0
