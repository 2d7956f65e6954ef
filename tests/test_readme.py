"""Every fenced code block of README.md is run (or, for the few that cannot be, checked) here,
so the README cannot drift from the code.

How it works, for everyone who adds a README section:

* Blocks are grouped by section (the nearest ``#``/``##``/``###`` heading above them). One
  test per section runs its blocks in document order, in one fresh working directory laid out
  like a clone: the package, the tests and ``.ci`` are symlinked, every other top-level entry
  is copied (blocks may write beside ``examples/`` files), and ``../shared`` is the shared
  models and photos when they exist. A block sees the files the earlier blocks of its section wrote.
* ```` ```python ```` blocks run as a script (``python -``) in that directory.
* ```` ```sh ````/```` ```bash ```` blocks: each line is a command (``\\`` continues a line,
  ``#`` starts a comment), run by ``bash -e`` in that directory. ``tnnquant``,
  ``quantization_cmd`` (from ``[project.scripts]`` in pyproject.toml) and ``python`` run this
  checkout with the test's interpreter. Parts of a line joined by ``&&`` that would install
  or re-run the test suite are checked instead of run:

  - ``pip install SPEC ...``: every SPEC is this project (``.``, ``-e .``, ``'.[extra,...]'``
    with each extra declared in pyproject.toml) or a package that pyproject.toml declares;
  - ``pytest [PATHS]``: the PATHS exist (the README's own test command is also checked to
    be what ``.ci/run`` runs, by ``test_ci_runs_the_readmes_test_command``);
  - ``.ci/run``, ``.ci/oldest``: exist and are executable.
* A block that mentions ``../shared`` is skipped, saying so, when ../shared is absent (a
  fresh clone); every other block must run on a fresh clone.
* A block preceded by ``<!-- readme: not run: REASON -->`` (e.g. a benchmark that takes
  minutes) is only checked: each command's program exists (a ``python FILE`` script exists
  and compiles) and our commands' options exist. Give the reason; keep such blocks rare.
* ```` ```text ```` blocks (and any other language) are output samples, synopses or file
  layouts, not code: the options in a line that starts with ``tnnquant SUBCOMMAND`` or
  ``quantization_cmd`` must exist.
* A section gets SECTION_TIMEOUT seconds. Keep examples small (``examples/tiny`` calibrates
  in about a second).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import SHARED
from tnnquant.cli import _Parser, add_quantize_options, build_parser

try:
    import tomllib
except ModuleNotFoundError:   # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SECTION_TIMEOUT = 300
LINKED = ("tnnquant", "tests", ".ci")   # symlinked into the work directory; the rest is copied
RUN_LANGUAGES = {"python", "sh", "bash", "shell"}
NOT_RUN = re.compile(r"<!--\s*readme:\s*not run:\s*(\S.*?)\s*-->")


@dataclass
class Block:
    line: int             # 1-based line of the opening fence
    language: str
    text: str
    not_run: str | None   # the reason given in a preceding <!-- readme: not run: ... -->


def readme_sections(text: str) -> dict[str, list[Block]]:
    """Heading -> the fenced blocks under it, in order."""
    sections: dict[str, list[Block]] = {}
    heading = "(top)"
    lines = text.splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        fence = re.match(r"^(```+)\s*([\w+-]*)", line)
        if fence:
            end = next((j for j in range(k + 1, len(lines))
                        if lines[j].startswith(fence.group(1))), None)
            assert end is not None, f"README.md:{k + 1}: code block never closed"
            before = next((lines[j] for j in range(k - 1, -1, -1) if lines[j].strip()), "")
            reason = NOT_RUN.search(before)
            sections.setdefault(heading, []).append(Block(
                k + 1, fence.group(2).lower(), "\n".join(lines[k + 1:end]),
                reason.group(1) if reason else None))
            k = end
        k += 1
    return sections


SECTIONS = readme_sections(README.read_text(encoding="utf-8"))


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


# --- the work directory ----------------------------------------------------------------------

@pytest.fixture
def clone(tmp_path: Path) -> dict:
    """A working directory laid out like a clone, and the environment blocks run in."""
    work = tmp_path / "clone"
    work.mkdir()
    for entry in REPO.iterdir():
        if entry.name.startswith(".") and entry.name not in LINKED:
            continue
        if entry.name in LINKED:
            (work / entry.name).symlink_to(entry)
        elif entry.is_dir():
            shutil.copytree(entry, work / entry.name)
        else:
            shutil.copy2(entry, work / entry.name)
    if SHARED.exists():
        (tmp_path / "shared").symlink_to(SHARED.resolve())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    for name, target in pyproject()["project"]["scripts"].items():
        module, func = target.split(":")
        shim = bin_dir / name
        shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -c "
                        f"'import sys; from {module} import {func}; sys.exit({func}())' \"$@\"\n")
        shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))
    return {"cwd": work, "env": env}


# --- commands ----------------------------------------------------------------------------------

def logical_lines(text: str) -> list[str]:
    """Shell lines with backslash continuations joined; blank and comment-only lines dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if shlex.split(line, comments=True):
            out.append(line)
    return out


def command_words(segment: str) -> list[str]:
    """The words of one command, without leading VAR=value assignments."""
    words = shlex.split(segment, comments=True)
    while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
        words.pop(0)
    return words


def check_pip_install(words: list[str], where: str) -> None:
    project = pyproject()["project"]
    declared = {re.split(r"[<>=!~;\[ ]", r)[0].lower() for r in project["dependencies"]}
    extras = project.get("optional-dependencies", {})
    for deps in extras.values():
        declared |= {re.split(r"[<>=!~;\[ ]", r)[0].lower() for r in deps}
    specs = [w for w in words[2:] if not w.startswith("-")]
    assert specs, f"{where}: pip install of nothing"
    for spec in specs:
        local = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", spec)
        if local:
            for extra in filter(None, (local.group(1) or "").split(",")):
                assert extra in extras, f"{where}: pyproject.toml has no extra '{extra}'"
        else:
            name = re.split(r"[<>=!~;\[ ]", spec)[0].lower()
            assert name in declared, f"{where}: '{spec}' is not a dependency in pyproject.toml"


def checked_instead_of_run(words: list[str], cwd: Path, where: str) -> bool:
    """Check an install or test-suite command (see the module docstring); False: run it."""
    pip = words[2:] if words[:3] == ["python", "-m", "pip"] else words
    if pip[:2] == ["pip", "install"]:
        check_pip_install(pip, where)
        return True
    if words and words[0] == "pytest":
        for arg in words[1:]:
            if not arg.startswith("-"):
                assert (cwd / arg.split("::")[0]).exists(), f"{where}: no test path {arg}"
        return True
    if words and words[0] in (".ci/run", ".ci/oldest"):
        assert os.access(cwd / words[0], os.X_OK), f"{where}: {words[0]} is not executable"
        return True
    return False


def check_program(words: list[str], cwd: Path, env: dict, where: str) -> None:
    """A command that is not run: its program exists, and our commands' options are real."""
    program = words[0]
    if program == "python" and len(words) > 1 and not words[1].startswith("-"):
        script = cwd / words[1]
        assert script.is_file(), f"{where}: no script {words[1]}"
        compile(script.read_text(encoding="utf-8"), str(script), "exec")
    elif program in pyproject()["project"]["scripts"]:
        check_options(program, shlex.join(words[1:]), where)
    else:
        assert shutil.which(program, path=env["PATH"]) or (cwd / program).exists(), (
            f"{where}: no program '{program}'")


def check_options(program: str, args: str, where: str) -> None:
    """Every -x / --xx option written in ``args`` (a command line or a synopsis such as
    ``[-b 0|2] [--exact]``) is one that ``program`` accepts."""
    if program == "quantization_cmd":
        parser = _Parser(prog=program)
        add_quantize_options(parser)
    else:
        subcommand = args.split()[0] if args.split() else ""
        choices = build_parser()._subparsers._group_actions[0].choices
        assert subcommand in choices, f"{where}: 'tnnquant {subcommand}' is no subcommand"
        parser = choices[subcommand]
    known = parser._option_string_actions
    for option in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", args):
        assert option in known, f"{where}: {program} has no option {option}"


def run_shell_block(block: Block, clone: dict) -> None:
    cwd, env = clone["cwd"], clone["env"]
    for line in logical_lines(block.text):
        where = f"README.md:{block.line}: `{line.strip()}`"
        to_run = []
        for segment in line.split("&&"):
            words = command_words(segment)
            if not words or checked_instead_of_run(words, cwd, where):
                continue
            if block.not_run:
                check_program(words, cwd, env, where)
            else:
                to_run.append(segment.strip())
        if to_run:
            result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", " && ".join(to_run)],
                                    cwd=cwd, env=env, capture_output=True, text=True,
                                    timeout=SECTION_TIMEOUT)
            assert result.returncode == 0, (f"{where} exited {result.returncode}:\n"
                                            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def run_python_block(block: Block, clone: dict) -> None:
    result = subprocess.run([sys.executable, "-"], input=block.text, cwd=clone["cwd"],
                            env=clone["env"], capture_output=True, text=True,
                            timeout=SECTION_TIMEOUT)
    assert result.returncode == 0, (f"README.md:{block.line}: python block failed:\n"
                                    f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")


def check_synopsis(block: Block) -> None:
    """Indented lines continue the line above (a synopsis wrapped over several lines)."""
    lines: list[str] = []
    for line in block.text.splitlines():
        if line[:1].isspace() and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    for line in lines:
        words = line.split()
        if words and words[0] in pyproject()["project"]["scripts"]:
            check_options(words[0], line.split(None, 1)[1] if len(words) > 1 else "",
                          f"README.md:{block.line}: synopsis")


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_readme_section_runs(section, clone):
    blocks = SECTIONS[section]
    if not SHARED.exists() and any("../shared" in b.text for b in blocks
                                   if b.language in RUN_LANGUAGES and not b.not_run):
        pytest.skip(f"a block of this README section uses ../shared, and {SHARED} is absent")
    for block in blocks:
        if block.language == "python" and not block.not_run:
            run_python_block(block, clone)
        elif block.language in RUN_LANGUAGES - {"python"}:
            run_shell_block(block, clone)
        else:   # output samples, synopses, file layouts: not code
            check_synopsis(block)


def test_readme_has_runnable_blocks():
    """The parser sees the quick start and the Python API (guards the parser itself)."""
    languages = [b.language for blocks in SECTIONS.values() for b in blocks]
    assert languages.count("python") >= 1 and languages.count("sh") >= 2


def test_ci_runs_the_readmes_test_command():
    """The README's second command (install with tests, run the tests) is exactly what
    .ci/run runs after creating its fresh virtual environment."""
    first = next(b for blocks in SECTIONS.values() for b in blocks if b.language == "sh")
    test_command = logical_lines(first.text)[1].strip()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in (line.strip() for line in ci), (test_command, ci)


def test_not_run_blocks_say_why():
    """<!-- readme: not run: --> needs a reason, and is rare."""
    text = README.read_text(encoding="utf-8")
    assert not re.search(r"<!--\s*readme:\s*not run:\s*-->", text)
    marked = [b for blocks in SECTIONS.values() for b in blocks if b.not_run]
    run = [b for blocks in SECTIONS.values() for b in blocks if b.language in RUN_LANGUAGES]
    assert len(marked) <= len(run) // 2
