"""The oldest dependency versions pyproject.toml allows are the ones .ci/oldest installs (and
tests): a raised floor, or a new dependency, must show up in both."""
from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:   # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def release(version: str) -> tuple[int, ...]:
    """``1.23`` and ``1.23.0`` alike."""
    parts = [int(p) for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def floors() -> dict[str, tuple[int, ...]]:
    """name -> the version after ">=" of every requirement of the package and its test extra."""
    declared = project()
    out = {}
    for requirement in [*declared["dependencies"], *declared["optional-dependencies"]["test"]]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)\s*(;.*)?",
                             requirement)
        assert match, f"pyproject.toml: {requirement!r} has no '>=' floor"
        out[match[1].lower()] = release(match[2])
    return out


def pins() -> dict[str, tuple[int, ...]]:
    """name -> version of every ``name==version`` line of .ci/oldest.txt."""
    out = {}
    for line in (REPO / ".ci" / "oldest.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[name.strip().lower()] = release(version.strip())
    return out


def test_oldest_pins_are_the_floors():
    assert pins() == floors()


def test_oldest_python_is_the_floor():
    script = (REPO / ".ci" / "oldest").read_text(encoding="utf-8")
    floor = re.fullmatch(r">=\s*3\.(\d+)", project()["requires-python"])[1]
    assert f'python="${{PYTHON:-python3.{floor}}}"' in script
