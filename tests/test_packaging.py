"""The project's front door: dependencies in step, a light import, clean notebooks, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = [x for d in env["dependencies"] if isinstance(d, dict) for x in d.get("pip", [])]
    conda = [d for d in env["dependencies"] if isinstance(d, str) and _name(d) not in ("python", "pip")] + pip_section
    norm = lambda reqs: {_name(r): r.replace(" ", "").split(_name(r), 1)[-1] for r in reqs}  # noqa: E731
    py, co = norm(pip_reqs), {_name(d): d.replace(" ", "")[len(_name(d)) :] for d in conda}
    assert set(py) == set(co), f"only in pyproject: {set(py) - set(co)}; only in environment.yml: {set(co) - set(py)}"
    for name, spec in py.items():
        assert co[name] == spec, f"{name}: pyproject {spec!r} vs environment.yml {co[name]!r}"
    python = next(d for d in env["dependencies"] if isinstance(d, str) and _name(d) == "python")
    assert python.replace(" ", "") == "python" + project["requires-python"]


def test_required_stack_is_declared():
    deps = {_name(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert {
        "jupyterlab",
        "ipywidgets",
        "polars",
        "pymc",
        "arviz",
        "hvplot",
        "papermill",
        "pint",
    } <= deps


def test_import_is_light():
    code = (
        "import sys, bioworkbench as bw; "
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'hvplot', 'holoviews', 'bokeh', 'papermill', 'pandas', 'scipy', 'pint') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at `import bioworkbench`: {out.stdout}"


def test_notebooks_have_no_outputs():
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        data = json.loads(nb.read_text())
        for cell in data["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, nb.name


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in ci


def test_find_python_refuses_old_interpreters(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYENV_ROOT": str(tmp_path / "none"),
    }
    res = subprocess.run(["bash", str(ROOT / "scripts" / "find-python.sh")], capture_output=True, text=True, env=env)
    if res.returncode == 0:  # a system Python >= 3.12 exists in /usr/bin: it must be that one
        out = subprocess.run(
            [res.stdout.strip(), "-c", "import sys; print(sys.version_info >= (3, 12))"],
            capture_output=True,
            text=True,
        )
        assert out.stdout.strip() == "True"
    else:
        assert "needs Python >= 3.12" in res.stderr and "BW_PYTHON" in res.stderr
    env["BW_PYTHON"] = sys.executable
    res = subprocess.run(["bash", str(ROOT / "scripts" / "find-python.sh")], capture_output=True, text=True, env=env)
    assert res.returncode == 0 and Path(res.stdout.strip()).name.startswith("python")


def test_ruff_is_configured():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "ruff" in cfg["tool"] and cfg["tool"]["ruff"]["target-version"] == "py312"
