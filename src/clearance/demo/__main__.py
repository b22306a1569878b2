"""``python -m clearance.demo`` (``make run``): the worked example on 127.0.0.1."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from clearance.errors import BadInput, ClearanceError


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m clearance.demo", description=__doc__)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("demo-data"),
        help="data directory, recreated on each run (default ./demo-data)",
    )
    parser.add_argument(
        "--port",
        type=int,
        # A string default goes through ``type``: a bad $PORT is a usage error, not a traceback.
        default=os.environ.get("PORT", "8000"),
        help="gateway port (default $PORT or 8000)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        default=os.environ.get("CLEARANCE_DEMO_ONCE") == "1",
        help="exit after the example instead of serving (env CLEARANCE_DEMO_ONCE=1)",
    )
    parser.add_argument(
        "--shared", type=Path, default=None, help="the shared data folder (default ../shared)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from clearance.demo.run import default_shared_dir
    from clearance.demo.run import main as run

    args = _parse(argv)
    try:
        return run(args.data, args.port, args.once, args.shared or default_shared_dir())
    except BadInput as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    except ClearanceError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
