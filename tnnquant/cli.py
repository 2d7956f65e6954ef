"""Command lines: `tnnquant <subcommand>` and the TNN drop-in `quantization_cmd`.

Only this module prints. A user mistake (TnnQuantError) prints one line to stderr and exits 1;
never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any, Callable, Sequence

from .errors import ConfigError, TnnQuantError, one_line


def _fail(message: str) -> int:
    print(f"error: {one_line(message)}", file=sys.stderr)
    return 1


_warned: set[str] = set()   # warnings printed by this command (each is printed once)


def guarded(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    _warned.clear()   # once per command, also when main() is called again in one process
    try:
        with warnings.catch_warnings():
            # numpy's floating-point warnings (inf/NaN weights or inputs of a damaged model)
            # would print file paths and line numbers; tnnquant says what is wrong instead
            warnings.simplefilter("ignore", RuntimeWarning)
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
    from .formats.io import is_onnx, load_model, load_proto
    from .info import format_info, model_info
    graph = (load_model(args.proto, args.model) if args.model or is_onnx(args.proto)
             else load_proto(args.proto))
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
    graph = load_model_from(args)
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
    from .report import compare_folder, compare_with_details, render, render_html
    if args.json and not Path(args.json).parent.is_dir():   # fail before a long evaluation
        raise ConfigError(f"--json {args.json}: no such folder '{Path(args.json).parent}'")
    class_names = _check_html_options(args)
    float_graph = load_model_from(args)
    int8_graph = load_model(args.int8_proto, args.int8_model)
    # the bar goes to stderr so that stdout holds the table alone
    with tqdm(desc="compare", unit="sample", file=sys.stderr, leave=False,
              disable=args.quiet or not sys.stderr.isatty()) as bar:
        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        if args.html:
            report, details = compare_with_details(
                float_graph, int8_graph, args.input, preprocess_from(args), args.labels,
                args.batch, progress, _warn, args.device, class_names)
        else:
            report = compare_folder(float_graph, int8_graph, args.input, preprocess_from(args),
                                    args.labels, args.batch, progress, _warn, args.device)
    files = {}
    if args.json:
        files[args.json] = report.to_json().encode()
    if args.html:
        files[args.html] = render_html(report, details).encode()
    write_files_atomically(files)
    print(render(report))
    for path in files:
        print(f"wrote {path}")
    return 0


def _check_html_options(args: argparse.Namespace) -> dict[int, str] | None:
    """Before any long work: --html can be written (matplotlib present, folder exists); the
    class names, if given, are read."""
    from pathlib import Path

    if args.html:
        from .report.plots import require_matplotlib
        require_matplotlib()
        if not Path(args.html).parent.is_dir():
            raise ConfigError(f"--html {args.html}: no such folder '{Path(args.html).parent}'")
    if args.class_names and not args.html:
        raise ConfigError("--class-names names the classes of the HTML report: add --html FILE")
    if not args.class_names:
        return None
    from .report import read_class_names   # only here: quantization_cmd's start-up
    return read_class_names(args.class_names)


def add_html_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--html", metavar="FILE",
                   help="also write a self-contained HTML report with plots (needs "
                        "matplotlib: pip install 'tnnquant[report]')")
    p.add_argument("--class-names", metavar="FILE",
                   help="class names for the HTML report, line N naming class N-1")


# --- quantize / quantization_cmd ------------------------------------------------------------

def add_quantize_options(p: argparse.ArgumentParser) -> None:
    """TNN's quantization_cmd flags (short and long names), then tnnquant's own."""
    add_model_options(p)
    p.add_argument("-i", "--input_path", "--input-path", dest="input_path", required=True,
                   metavar="DIR", help="calibration folder: .txt (NCHW floats), .npy, "
                   ".jpg/.jpeg/.png/.bmp; one sub-folder per input for multi-input models")
    p.add_argument("-b", "--blob_method", "--blob-method", dest="blob_method", default=None,
                   metavar="M", help="0 MinMax (TNN's default), 2 KL, 3 asymmetric MinMax, "
                   "4 ACIQ-Gauss, 5 ACIQ-Laplace (codes or names; tnnquant's own: mse, "
                   "percentile)")
    p.add_argument("-w", "--weight_method", "--weight-method", dest="weight_method",
                   default=None, metavar="M",
                   help="0 MinMax (TNN's default), 1 ADMM, 3 asymmetric MinMax (codes or names; "
                        "tnnquant's own: mse)")
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
    extra.add_argument("--hist-memory", type=int, metavar="MB",
                       help="histograms kept at once (default 32 for TNN's recipe, 256 for "
                            "tnnquant's); a smaller budget lowers peak memory at the cost of "
                            "extra float passes")
    extra.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    extra.add_argument("--eval", metavar="DIR", help="folder for the accuracy summary at the "
                       "end (default: the calibration folder)")
    extra.add_argument("--no-report", action="store_true",
                       help="skip the accuracy summary (float vs simulated int8)")
    extra.add_argument("--labels", metavar="FILE", help="'FILENAME CLASS_INDEX' lines for "
                       "the --eval samples: adds top-1/top-5 accuracy to the summary")
    add_html_options(extra)


def _warn(message: str) -> None:
    """Print a warning once (a folder read twice, e.g. for calibration and the accuracy
    summary, says what it skips once)."""
    if message in _warned:
        return
    _warned.add(message)
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


def add_recipe_options(p: argparse.ArgumentParser) -> None:
    """`tnnquant quantize` only: the recipe beyond TNN (quantization_cmd stays TNN's)."""
    from .config import OPTIONS, PRESETS, TECHNIQUES
    recipe = p.add_argument_group("recipe (tnnquant quantize)")
    recipe.add_argument("--preset", choices=PRESETS, default="default",
                        help="default: tnnquant's most accurate recipe; tnn: TNN's recipe, "
                             "as quantization_cmd (-b/-w/-t then select TNN's methods)")
    recipe.add_argument("--no", dest="disable", action="append", default=[],
                        choices=list(TECHNIQUES), metavar="TECHNIQUE",
                        help="switch one technique of the default recipe off (repeatable): "
                             + ", ".join(TECHNIQUES))
    recipe.add_argument("--with", dest="enable", action="append", default=[],
                        choices=list(OPTIONS), metavar="TECHNIQUE",
                        help="switch one technique beyond the default recipe on (repeatable): "
                             + ", ".join(OPTIONS))
    recipe.add_argument("--target-cos", type=float, default=None, metavar="C",
                        help="mixed precision: keep the fewest layers float until the simulated "
                             "output cosine on the calibration set reaches C")


def _method_name(value: str, option: str, codes: dict[int, str], registry) -> str:
    """A method name from a TNN code ('2') or a registered name ('kl', 'mse')."""
    if value.lower() in registry:
        return value.lower()
    return codes[_method_code(value, option, codes)]


def quant_config_from(args: argparse.Namespace):
    from .calib.methods import ACT_METHOD_CODES, ACT_METHODS
    from .config import OPTIONS, TECHNIQUES, QuantConfig, preset
    from .weights import WEIGHT_METHOD_CODES, WEIGHT_METHODS
    common = dict(preprocess=preprocess_from(args), exclude=tuple(args.exclude),
                  batch_size=args.batch, fp32="naive" if args.exact else "fast")
    if args.hist_memory is not None:   # else the preset's
        common["hist_memory_mb"] = args.hist_memory
    name = getattr(args, "preset", "tnn")
    if name == "tnn":
        return QuantConfig.from_tnn(
            _method_code(args.blob_method or "0", "-b", ACT_METHOD_CODES),
            _method_code(args.weight_method or "0", "-w", WEIGHT_METHOD_CODES),
            args.merge_type, args.merge_channel, fold_merged_scales=args.fix_merged_scales,
            target_cos=getattr(args, "target_cos", None), **common)
    changes: dict = {}
    for technique in args.enable:
        changes.update(OPTIONS[technique])
    for technique in args.disable:
        changes.update(TECHNIQUES[technique])
    if args.blob_method is not None:
        changes["blob_method"] = _method_name(args.blob_method, "-b", ACT_METHOD_CODES,
                                              ACT_METHODS)
    if args.weight_method is not None:
        changes["weight_method"] = _method_name(args.weight_method, "-w", WEIGHT_METHOD_CODES,
                                                WEIGHT_METHODS)
    merge_type = 1 if args.merge_channel and args.merge_type == 0 else args.merge_type
    return preset(name, merge_type=merge_type, target_cos=args.target_cos,
                  **{**changes, **common})


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
    lines += result.notes
    return "\n".join(lines)


def cmd_quantize(args: argparse.Namespace) -> int:
    from .quantize import quantize
    config = quant_config_from(args)
    proto_path, model_path = output_paths(args.output)
    folder = os.path.dirname(proto_path) or "."
    if not os.path.isdir(folder):   # fail before calibration, not after minutes of it
        raise ConfigError(f"{proto_path}: cannot write: no such folder '{folder}'")
    if args.no_report and (args.html or args.labels):
        raise ConfigError(f"{'--html' if args.html else '--labels'} needs the accuracy "
                          f"report: drop --no-report")
    class_names = _check_html_options(args)
    graph = load_model_from(args)
    eval_folder = args.eval or args.input_path
    if not args.no_report and (args.eval or args.labels):
        from .report.compare import evaluation_samples
        # a bad --eval folder or --labels file fails before anything is written
        evaluation_samples(graph, eval_folder, args.labels, _warn)
    bars: dict = {}

    def progress(stage: str, done: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():   # one stage at a time: the previous one is done
                other.close()
            bar = bars[stage] = _progress_bar(stage, args.quiet)
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
        _accuracy_summary(args, config, graph, result, eval_folder, class_names, proto_path)
    return 0


def _accuracy_summary(args: argparse.Namespace, config, graph, result, folder: str,
                      class_names, proto_path: str) -> None:
    """Print the accuracy summary (and write the HTML report)."""
    from .report import compare_folder, compare_with_details, summarize

    def compare():
        with _progress_bar("accuracy", args.quiet) as bar:
            def progress(done: int, total: int | None) -> None:
                bar.update(done - bar.n)

            # one sample at a time: the comparison holds every float blob of a batch
            if args.html:
                return compare_with_details(graph, result.graph, folder, config.preprocess,
                                            args.labels, 1, progress, _warn,
                                            class_names=class_names)
            return compare_folder(graph, result.graph, folder, config.preprocess,
                                  args.labels, 1, progress, _warn), None

    compared = _after_writing("accuracy summary", compare)
    if compared is None:
        return
    report, details = compared
    print(f"accuracy of the int8 model (simulated TNN x86/ARM int8) vs float on {folder}:")
    print(summarize(report))
    if getattr(args, "preset", "tnn") == "tnn":
        line = _after_writing("comparison with the default recipe",
                              lambda: _default_recipe_line(graph, args, config, folder))
        if line:
            print(line)
    if args.html:
        _after_writing("HTML report", lambda: _write_quantize_html(args, config, result, report,
                                                                   details, proto_path))


def _after_writing(what: str, step: Callable[[], Any]) -> Any:
    """Run a step that comes after the model files are written: a problem there (an evaluation
    file that cannot be read, memory) is a warning and the command still succeeds, never exit
    1 with finished files on disk."""
    try:
        return step()
    except (TnnQuantError, MemoryError) as err:
        reason = str(err) if isinstance(err, TnnQuantError) else "out of memory"
        _warn(f"no {what} ({reason}); the model files are written")
        return None


def _default_recipe_line(graph, args: argparse.Namespace, tnn_config, folder: str) -> str:
    """One line: what `tnnquant quantize` (the default recipe) reaches on the same data,
    measured by quantizing and simulating it now."""
    import dataclasses

    from .config import QuantConfig
    from .quantize import quantize
    from .report import compare_folder
    config = dataclasses.replace(QuantConfig(), preprocess=tnn_config.preprocess,
                                 exclude=tnn_config.exclude, batch_size=tnn_config.batch_size)
    with _progress_bar("tnnquant quantize (default recipe)", args.quiet) as bar:
        # its warnings concern a model that is not written; the folders' were said already
        result = quantize(graph, args.input_path, config,
                          lambda stage, done: bar.set_postfix_str(stage), lambda message: None)
        report = compare_folder(graph, result.graph, folder, config.preprocess, batch_size=1,
                                warn=_warn)
    parts = []
    for o in report.outputs:
        text = f"{o.name} cosine {o.cosine:.4f}"
        if o.classifier:
            text += f", top-1 agreement {100 * o.classifier.top1_agreement:.1f}%"
        parts.append(text)
    return (f"tnnquant quantize (default recipe) on the same data reaches: {'; '.join(parts)} "
            f"(quantized in {result.seconds:.1f} s)")


def _write_quantize_html(args: argparse.Namespace, config, result, report, details,
                         proto_path: str) -> None:
    from collections import Counter
    from pathlib import Path

    from .formats.io import write_files_atomically
    from .report import render_html
    methods = Counter(plan.method for plan in result.plans.values())
    context = [f"Calibrated on {result.samples} samples of {args.input_path}: blob scales by "
               f"{', '.join(f'{m} ({n} blobs)' for m, n in methods.most_common())}; weight "
               f"scales by {config.weight_method}."]
    title = f"int8 vs float: {Path(proto_path).name} vs {Path(args.proto).name}"
    write_files_atomically({args.html: render_html(report, details, title, context).encode()})
    print(f"wrote {args.html}")


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
    p.add_argument("proto", help="MODEL.tnnproto (or MODEL.onnx, converted in memory)")
    p.add_argument("model", nargs="?", help="MODEL.tnnmodel (optional: weights summary)")
    p.set_defaults(func=cmd_info, input_shape=[])

    p = sub.add_parser("convert", help="convert an ONNX model to TNN (as TNN's onnx2tnn does)")
    p.add_argument("onnx", metavar="MODEL.onnx")
    p.add_argument("-o", "--output", metavar="NAME",
                   help="write NAME.tnnproto/NAME.tnnmodel (default: beside the ONNX model)")
    add_input_shape_option(p)
    p.add_argument("--half", action="store_true", help="store the weights as fp16")
    p.set_defaults(func=cmd_convert)

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
    add_html_options(p)
    p.add_argument("--batch", type=int, default=4, metavar="N",
                   help="samples per forward pass (default 4)")
    p.add_argument("--device", choices=("x86", "naive"), default="x86",
                   help="whose int8 arithmetic to simulate (x86 also stands for ARM)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("quantize", help="calibrate and write the int8 model with tnnquant's "
                                        "most accurate recipe (or --preset tnn); the options "
                                        "of TNN's quantization_cmd")
    add_quantize_options(p)
    add_recipe_options(p)
    p.set_defaults(func=cmd_quantize)
    return parser


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The float model: -p X.tnnproto -m X.tnnmodel, or -p MODEL.onnx alone (converted in
    memory as `tnnquant convert` does)."""
    p.add_argument("-p", "--proto", required=True, metavar="X.tnnproto|MODEL.onnx",
                   help="float model proto, or an ONNX model (converted in memory)")
    p.add_argument("-m", "--model", metavar="X.tnnmodel",
                   help="float model weights (not with an ONNX model)")
    add_input_shape_option(p)


def add_input_shape_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME:D0,D1,...",
                   help="ONNX models: fix an input's dims (repeatable), e.g. "
                        "images:1,3,320,320")


def parse_input_shapes(values: list[str]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for value in values:
        name, sep, dims = value.rpartition(":")
        try:
            parsed = tuple(int(d) for d in dims.split(","))
        except ValueError:
            parsed = ()
        if not sep or not name or not parsed or min(parsed) <= 0:
            raise ConfigError(f"--input-shape {value}: expected NAME:D0,D1,... with positive "
                              f"dims, e.g. input:1,3,224,224")
        if name in shapes:
            raise ConfigError(f"--input-shape {name} given twice")
        shapes[name] = parsed
    return shapes


def load_model_from(args: argparse.Namespace):
    from .formats.io import load_model
    return load_model(args.proto, args.model,
                      input_shapes=parse_input_shapes(args.input_shape) or None)


# --- convert ---------------------------------------------------------------------------------

def cmd_convert(args: argparse.Namespace) -> int:
    from collections import Counter
    from pathlib import Path

    from .convert import convert_onnx
    from .formats.io import is_onnx, save_model
    if not is_onnx(args.onnx):
        raise ConfigError(f"{args.onnx}: expected an ONNX model (.onnx)")
    name = args.output or str(Path(args.onnx).with_suffix(""))
    graph = convert_onnx(args.onnx, parse_input_shapes(args.input_shape) or None, args.half)
    proto_path, model_path = f"{name}.tnnproto", f"{name}.tnnmodel"
    save_model(graph, proto_path, model_path)
    kinds = Counter(layer.type for layer in graph.layers)
    inputs = ", ".join(f"{s.name} {'x'.join(map(str, s.dims))}" for s in graph.inputs)
    print(f"converted {len(graph.layers)} layers "
          f"({', '.join(f'{n} {t}' for t, n in kinds.most_common())}); inputs: {inputs}; "
          f"{'fp16' if args.half else 'fp32'} weights")
    print(f"wrote {proto_path} and {model_path}")
    return 0


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
