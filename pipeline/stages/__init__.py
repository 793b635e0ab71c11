"""The entry points of the DVC stages: one file per stage of dvc.yaml, each holding only its ``main(argv)``.

    python -m pipeline.stages.<stage> ...      # what dvc.yaml runs
    distill <stage> ...                        # the same main(), from the CLI

A stage file parses its arguments, loads its params section, calls the library function that does the
work (``pipeline.<stage>`` or the package named in its docstring) and writes the outputs dvc.yaml names.
This module holds what every entry shares: ``--params``/``--set``, logging, and turning user errors into
one line and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence

from pipeline.errors import DistillError

log = logging.getLogger("distill")


def setup_logging(level: int = logging.INFO) -> None:
    if logging.getLogger().handlers:
        return
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # one INFO line per HTTP request (an LLM teacher makes thousands) drowns the stage's own progress
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))


def stage_parser(prog: str, description: str | None, paths: str = "") -> argparse.ArgumentParser:
    """The stage's parser: ``--params``, ``--set`` and a required path argument per ``--flag=output`` of
    ``paths`` (space-separated), ``output`` naming the dvc.yaml path it gets there (shown in ``--help``)."""
    from pipeline import outputs

    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    known = outputs.paths()  # a dvc.yaml that spells its paths inline has none: the help names the output
    for spec in paths.split():
        flag, output = spec.split("=")
        parser.add_argument(flag, required=True, metavar="PATH",
                            help=f"dvc.yaml passes {known.get(output, 'the ' + output + ' output')}")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params key, e.g. --set distill.epochs=3 (repeatable)")
    return parser


def load_stage_params(args: argparse.Namespace):
    from pipeline.config import load_params, parse_overrides

    return load_params(args.params, parse_overrides(args.overrides))


def run_stage(name: str, body: Callable[[argparse.Namespace], object], parser: argparse.ArgumentParser,
              argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run ``body(args)``, turn user errors into a message and exit code 2."""
    from pipeline.config import ConfigError

    setup_logging()
    args = parser.parse_args(list(argv) if argv is not None else None)
    started = time.perf_counter()
    try:
        body(args)
    except (ConfigError, DistillError) as exc:
        print(f"distill {name}: error: {exc}", file=sys.stderr)
        return 2
    log.info("%s finished in %.1f s", name, time.perf_counter() - started)
    return 0
