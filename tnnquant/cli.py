"""Command lines: `tnnquant <subcommand>` and the TNN drop-in `quantization_cmd`.

Only this module prints. A user mistake (TnnQuantError) prints one line to stderr and exits 1;
never a traceback.
"""
from __future__ import annotations

import argparse
import os
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


def _run_model(args: argparse.Namespace, quantized: bool) -> int:
    """`run` (float model) and `simulate` (int8 model): read inputs, run, print, save."""
    from .api import read_inputs, run, save_outputs, simulate
    from .formats.io import load_model
    graph = load_model(args.proto, args.model)
    if graph.is_quantized != quantized:
        raise ConfigError(f"{args.proto} is a quantized model: use 'tnnquant simulate'"
                          if graph.is_quantized else
                          f"{args.proto} has no quantized layer: use 'tnnquant run'")
    inputs = read_inputs(graph, input_files(args.input), preprocess_from(args))
    outputs = simulate(graph, inputs, device=args.device) if quantized else run(graph, inputs)
    print_outputs(outputs)
    if args.output:
        for path in save_outputs(outputs, args.output):
            print(f"wrote {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return _run_model(args, quantized=False)


def cmd_simulate(args: argparse.Namespace) -> int:
    return _run_model(args, quantized=True)


# --- compare ---------------------------------------------------------------------------------

def cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from .formats.io import load_model, write_files_atomically
    from .report import compare_folder, render
    if args.json and not Path(args.json).parent.is_dir():   # fail before a long evaluation
        raise ConfigError(f"--json {args.json}: no such folder '{Path(args.json).parent}'")
    float_graph = load_model(args.proto, args.model)
    int8_graph = load_model(args.int8_proto, args.int8_model)
    # the bar goes to stderr so that stdout holds the table alone
    with tqdm(desc="compare", unit="sample", file=sys.stderr, leave=False,
              disable=args.quiet or not sys.stderr.isatty()) as bar:
        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = compare_folder(float_graph, int8_graph, args.input, preprocess_from(args),
                                args.labels, args.batch, progress, _warn, args.device)
    if args.json:
        write_files_atomically({args.json: report.to_json().encode()})
    print(render(report))
    if args.json:
        print(f"wrote {args.json}")
    return 0


# --- quantize / quantization_cmd ------------------------------------------------------------

def add_quantize_options(p: argparse.ArgumentParser) -> None:
    """TNN's quantization_cmd flags (short and long names), then tnnquant's own."""
    p.add_argument("-p", "--proto", required=True, metavar="X.tnnproto", help="float model proto")
    p.add_argument("-m", "--model", required=True, metavar="X.tnnmodel", help="float model weights")
    p.add_argument("-i", "--input_path", "--input-path", dest="input_path", required=True,
                   metavar="DIR", help="calibration folder: .txt (NCHW floats), .npy, "
                   ".jpg/.jpeg/.png/.bmp; one sub-folder per input for multi-input models")
    p.add_argument("-b", "--blob_method", "--blob-method", dest="blob_method", default="0",
                   metavar="M", help="0 MinMax (default), 2 KL, 3 asymmetric MinMax, "
                   "4 ACIQ-Gauss, 5 ACIQ-Laplace (codes or names)")
    p.add_argument("-w", "--weight_method", "--weight-method", dest="weight_method",
                   default="0", metavar="M",
                   help="0 MinMax (default), 1 ADMM, 3 asymmetric MinMax (codes or names)")
    add_preprocess_options(p)
    p.add_argument("-c", "--merge_channel", "--merge-channel", dest="merge_channel",
                   action="store_true", help="per-tensor blob statistics (same as -t 1)")
    p.add_argument("-t", "--merge_type", "--merge-type", dest="merge_type", type=int,
                   default=0, choices=(0, 1, 2), help="0 per-channel blobs and weights "
                   "(default), 1 per-tensor blobs, 2 per-tensor blobs and weights")
    p.add_argument("-o", "--output", metavar="NAME", help="write NAME.quantized.tnnproto/"
                   ".tnnmodel (default: model_quantized.tnnproto/.tnnmodel here)")
    extra = p.add_argument_group("beyond TNN")
    extra.add_argument("--exact", action="store_true",
                       help="float statistics with TNN's NAIVE CPU arithmetic: the same files "
                            "as TNN's quantization_cmd, byte for byte (slower)")
    extra.add_argument("--exclude", action="append", default=[], metavar="LAYER",
                       help="keep this layer in float (repeatable)")
    extra.add_argument("--fix-merged-scales", action="store_true",
                       help="fold weights with the scales TNN's runtime really uses after "
                            "ReLU/max-pool scale merging (TNN folds stale ones, spec int8 §9)")
    extra.add_argument("--batch", type=int, default=8, metavar="N",
                       help="samples per forward pass (default 8)")
    extra.add_argument("--hist-memory", type=int, default=32, metavar="MB",
                       help="KL histograms kept at once (default 32); a smaller budget "
                            "lowers peak memory at the cost of extra float passes")
    extra.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    extra.add_argument("--eval", metavar="DIR", help="folder for the accuracy summary at the "
                       "end (default: the calibration folder)")
    extra.add_argument("--no-report", action="store_true",
                       help="skip the accuracy summary (float vs simulated int8)")


def _warn(message: str) -> None:
    if "tqdm" not in sys.modules:   # no progress bar was ever shown
        print(f"warning: {message}", file=sys.stderr)
        return
    from tqdm import tqdm
    tqdm.write(f"warning: {message}", file=sys.stderr)   # above a progress bar, not through it


def _method_code(value: str, option: str, names: dict[int, str]) -> int:
    """A TNN method code from a code ('2') or a name ('kl')."""
    try:
        return int(value)
    except ValueError:
        for code, name in names.items():
            if value.lower() == name:
                return code
    known = ", ".join(f"{c} {n}" for c, n in sorted(names.items()))
    raise ConfigError(f"{option} {value}: unknown method (known: {known})")


def quant_config_from(args: argparse.Namespace):
    from .calib.methods import ACT_METHOD_CODES
    from .config import QuantConfig
    from .weights import WEIGHT_METHOD_CODES
    return QuantConfig.from_tnn(
        _method_code(args.blob_method, "-b", ACT_METHOD_CODES),
        _method_code(args.weight_method, "-w", WEIGHT_METHOD_CODES),
        args.merge_type, args.merge_channel, preprocess=preprocess_from(args),
        exclude=tuple(args.exclude), fold_merged_scales=args.fix_merged_scales,
        batch_size=args.batch, fp32="naive" if args.exact else "fast",
        hist_memory_mb=args.hist_memory)


def output_paths(name: str | None) -> tuple[str, str]:
    """TNN's seed tool writes model_quantized.*; current TNN's -o NAME writes NAME.quantized.*"""
    if name is None:
        return "model_quantized.tnnproto", "model_quantized.tnnmodel"
    return f"{name}.quantized.tnnproto", f"{name}.quantized.tnnmodel"


def _summary(result, proto_path: str, model_path: str) -> str:
    from collections import Counter
    methods = Counter(plan.method for plan in result.plans.values())
    per_tensor = sum(plan.per_tensor for plan in result.plans.values())
    kinds = Counter(layer.type for layer in result.graph.layers if layer.quantized)
    lines = [
        f"calibrated {len(result.plans)} blobs on {result.samples} samples "
        f"({', '.join(f'{n} {m}' for m, n in methods.most_common())}; "
        f"{per_tensor} per-tensor) in {result.seconds:.1f} s",
        f"quantized {result.quantized_layers} of {len(result.graph.layers)} layers "
        f"({', '.join(f'{n} {t}' for t, n in kinds.most_common())})",
        f"wrote {proto_path} and {model_path}"]
    return "\n".join(lines)


def cmd_quantize(args: argparse.Namespace) -> int:
    from .formats.io import load_model
    from .quantize import quantize
    config = quant_config_from(args)
    proto_path, model_path = output_paths(args.output)
    graph = load_model(args.proto, args.model)
    bars: dict = {}

    def progress(stage: str, done: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = _progress_bar(f"calibration: {stage}", args.quiet)
        bar.update(done - bar.n)

    try:   # without a bar to show, tqdm is not even imported (start-up time)
        result = quantize(graph, args.input_path, config,
                          progress if _shows_progress(args.quiet) else None, _warn)
    finally:
        for bar in bars.values():
            bar.close()
    result.save(proto_path, model_path)
    print(_summary(result, proto_path, model_path))
    if not args.no_report:
        from .report import compare_folder, summarize
        folder = args.eval or args.input_path
        with _progress_bar("accuracy", args.quiet) as bar:
            # one sample at a time: the comparison holds every float blob of a batch
            report = compare_folder(graph, result.graph, folder, config.preprocess,
                                    batch_size=1, warn=_warn,
                                    progress=lambda done, total: bar.update(done - bar.n))
        print(f"accuracy of the int8 model (simulated TNN x86/ARM int8) vs float on {folder}:")
        print(summarize(report))
    return 0


def _shows_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _progress_bar(stage: str, quiet: bool):
    from tqdm import tqdm
    return tqdm(desc=stage, unit="sample", file=sys.stderr, leave=False,
                disable=quiet or not sys.stderr.isatty())


def quantization_cmd_main(argv: Sequence[str] | None = None) -> int:
    """`quantization_cmd`: TNN's command line, same flags and output files."""
    _one_blas_thread()
    _tolerant_output()
    parser = _Parser(prog="quantization_cmd",
                     description="Quantize a float TNN model to int8 (drop-in for TNN's "
                                 "quantization_cmd, by tnnquant).")
    add_quantize_options(parser)
    return guarded(cmd_quantize, parser.parse_args(argv))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tnnquant", description="Post-training int8 quantization for TNN models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("info", help="describe a TNN model")
    p.add_argument("proto", help="MODEL.tnnproto")
    p.add_argument("model", nargs="?", help="MODEL.tnnmodel (optional: weights summary)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("run", help="run the float model on one input")
    add_run_options(p, "write DIR/<output blob>.npy for every network output")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("simulate", help="run a quantized model as TNN's int8 runtime does")
    add_run_options(p, "write DIR/<output blob>.npy (dequantized float32) for every output")
    p.add_argument("--device", choices=("x86", "naive"), default="x86",
                   help="whose int8 arithmetic to simulate (x86, the default, also stands "
                        "for ARM)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("compare", help="accuracy of an int8 model against its float model")
    add_model_options(p)
    p.add_argument("--int8-proto", required=True, metavar="Q.tnnproto",
                   help="the quantized model's .tnnproto")
    p.add_argument("--int8-model", required=True, metavar="Q.tnnmodel",
                   help="the quantized model's .tnnmodel")
    p.add_argument("-i", "--input", required=True, metavar="DIR",
                   help="evaluation folder, laid out like a calibration folder")
    add_preprocess_options(p)
    p.add_argument("--labels", metavar="FILE",
                   help="'FILENAME CLASS_INDEX' lines: adds top-1/top-5 accuracy of both models")
    p.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    p.add_argument("--batch", type=int, default=4, metavar="N",
                   help="samples per forward pass (default 4)")
    p.add_argument("--device", choices=("x86", "naive"), default="x86",
                   help="whose int8 arithmetic to simulate (x86 also stands for ARM)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("quantize", help="calibrate and write the int8 model "
                                        "(the options of TNN's quantization_cmd)")
    add_quantize_options(p)
    p.set_defaults(func=cmd_quantize)
    return parser


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--proto", required=True, metavar="X.tnnproto")
    p.add_argument("-m", "--model", required=True, metavar="X.tnnmodel")


def add_run_options(p: argparse.ArgumentParser, output_help: str) -> None:
    """Options of `run` and `simulate`: the model, one input file per input, -o DIR."""
    add_model_options(p)
    p.add_argument("-i", "--input", action="append", required=True, metavar="FILE",
                   help=".txt (NCHW floats), .npy or image; NAME=FILE per input for "
                        "multi-input models")
    p.add_argument("-o", "--output", metavar="DIR", help=output_help)
    add_preprocess_options(p)


def _tolerant_output() -> None:
    """Names from model files may hold bytes that are not UTF-8 (kept as surrogate escapes):
    print them escaped instead of failing with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="backslashreplace")


def _one_blas_thread() -> None:
    """numpy's BLAS (OpenBLAS) runs one thread unless the user set one of its variables:
    the heavy float work is onnxruntime's, and a second BLAS thread that waits on a busy core
    slowed whole runs several-fold (README, Benchmarks). Must run before numpy is imported."""
    if "numpy" not in sys.modules and not any(
            v in os.environ for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                      "MKL_NUM_THREADS")):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def main(argv: Sequence[str] | None = None) -> int:
    _one_blas_thread()
    _tolerant_output()
    args = build_parser().parse_args(argv)
    return guarded(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
