"""Command lines: `tnnquant <subcommand>` and the TNN drop-in `quantization_cmd`.

Only this module prints. A user mistake (TnnQuantError) prints one line to stderr and exits 1;
never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from .errors import TnnQuantError


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def guarded(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return fn(args)
    except TnnQuantError as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        return _fail("interrupted")
    except MemoryError:
        return _fail("out of memory (try a smaller --batch)")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 1."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(1, f"error: {message} (see {self.prog} --help)\n")


# --- info ------------------------------------------------------------------------------------

def cmd_info(args: argparse.Namespace) -> int:
    from .formats.io import load_model, load_proto
    from .info import format_info, model_info
    graph = load_model(args.proto, args.model) if args.model else load_proto(args.proto)
    print(format_info(model_info(graph)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tnnquant", description="Post-training int8 quantization for TNN models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("info", help="describe a TNN model")
    p.add_argument("proto", help="MODEL.tnnproto")
    p.add_argument("model", nargs="?", help="MODEL.tnnmodel (optional: weights summary)")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
