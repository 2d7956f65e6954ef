"""Command lines: `tnnquant <subcommand>` and the TNN drop-in `quantization_cmd`.

Only this module prints. A user mistake (TnnQuantError) prints one line to stderr and exits 1;
never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from .errors import ConfigError, TnnQuantError


def _fail(message: str) -> int:
    # one line, even when a name read from a file holds a line feed or other control character
    message = "".join(c if c >= " " and c != "\x7f" else f"\\x{ord(c):02x}" for c in message)
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


# --- run -------------------------------------------------------------------------------------

def add_preprocess_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--mean", "--bias", dest="mean", default=None, metavar="M0,M1,M2",
                   help="per-channel mean subtracted from image inputs: (x - mean) * scale")
    p.add_argument("-s", "--scale", default=None, metavar="S0,S1,S2",
                   help="per-channel scale applied to image inputs")
    p.add_argument("-r", "--reverse_channel", type=int, choices=(0, 1), default=0,
                   help="1: feed images as BGR instead of RGB")


def preprocess_from(args: argparse.Namespace):
    from .calib.inputs import Preprocess, parse_channel_values
    mean = parse_channel_values(args.mean, "-n/--mean") if args.mean else ()
    scale = parse_channel_values(args.scale, "-s/--scale") if args.scale else ()
    return Preprocess(mean=mean, scale=scale, reverse_channel=bool(args.reverse_channel))


def input_files(values: list[str]):
    """``-i FILE`` for a single-input model, ``-i NAME=FILE`` (repeatable) otherwise."""
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    pairs = {}
    for value in values:
        name, sep, path = value.rpartition("=")
        if not sep or not name:
            raise ConfigError(f"'-i {value}': with several inputs use -i NAME=FILE")
        pairs[name] = path
    return pairs


def print_outputs(outputs) -> None:
    import numpy as np
    for name, value in outputs.items():
        flat = np.asarray(value, dtype=np.float64).reshape(-1)
        shape = "x".join(map(str, value.shape))
        print(f"{name}  {shape}  min {flat.min():.6g}  max {flat.max():.6g}  "
              f"mean {flat.mean():.6g}")
        top = np.argsort(-flat, kind="stable")[:5]
        print("  top: " + "  ".join(f"[{i}] {flat[i]:.6g}" for i in top))


def cmd_run(args: argparse.Namespace) -> int:
    from .api import read_inputs, run, save_outputs
    from .formats.io import load_model
    graph = load_model(args.proto, args.model)
    if graph.is_quantized:
        raise ConfigError(f"{args.proto} is a quantized model: use 'tnnquant simulate'")
    outputs = run(graph, read_inputs(graph, input_files(args.input), preprocess_from(args)))
    print_outputs(outputs)
    if args.output:
        for path in save_outputs(outputs, args.output):
            print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tnnquant", description="Post-training int8 quantization for TNN models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("info", help="describe a TNN model")
    p.add_argument("proto", help="MODEL.tnnproto")
    p.add_argument("model", nargs="?", help="MODEL.tnnmodel (optional: weights summary)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("run", help="run the float model on one input")
    add_model_options(p)
    p.add_argument("-i", "--input", action="append", required=True, metavar="FILE",
                   help=".txt (NCHW floats), .npy or image; NAME=FILE per input for "
                        "multi-input models")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="write DIR/<output blob>.npy for every network output")
    add_preprocess_options(p)
    p.set_defaults(func=cmd_run)
    return parser


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--proto", required=True, metavar="X.tnnproto")
    p.add_argument("-m", "--model", required=True, metavar="X.tnnmodel")


def _tolerant_output() -> None:
    """Names from model files may hold bytes that are not UTF-8 (kept as surrogate escapes):
    print them escaped instead of failing with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_output()
    args = build_parser().parse_args(argv)
    return guarded(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
