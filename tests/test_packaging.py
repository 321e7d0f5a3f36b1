"""The project's front door: dependencies in step, a light import, clean notebooks, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
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


# -------------------------------------------------------------------------------------------------
# the data layer imports one way (issue 15): errors -> units -> variables -> schema -> campaign -> io
# -------------------------------------------------------------------------------------------------
def _module_imports() -> dict[str, set[str]]:
    """Every bioworkbench module and the bioworkbench modules it imports, at any scope (as
    import-linter counts them), leaving out imports under ``if TYPE_CHECKING:``."""
    import ast

    package = ROOT / "bioworkbench"
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path

    def resolve(target: str) -> str:
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        return target

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip |= {id(n) for n in ast.walk(node)}
        found = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                found |= {resolve(a.name) for a in node.names if a.name.startswith("bioworkbench")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bioworkbench"):
                found |= {resolve(f"{node.module}.{a.name}") for a in node.names}
        graph[name] = {m for m in found if m != name}
    return graph


#: what each module of the data layer may import from bioworkbench (prefixes; a package's modules
#: may import each other)
_DATA_LAYER = {
    "bioworkbench.errors": set(),
    "bioworkbench.checks": {"bioworkbench.errors"},
    "bioworkbench.text": {"bioworkbench.errors"},
    "bioworkbench.units": {"bioworkbench.errors"},
    "bioworkbench.variables": {"bioworkbench.errors", "bioworkbench.units"},
    "bioworkbench.schema": {
        "bioworkbench.errors",
        "bioworkbench.checks",
        "bioworkbench.units",
        "bioworkbench.variables",
    },
    "bioworkbench.store": {"bioworkbench.errors", "bioworkbench.schema"},
    "bioworkbench.campaign": {
        "bioworkbench.errors",
        "bioworkbench.checks",
        "bioworkbench.schema",
        "bioworkbench.store",
        "bioworkbench.variables",
    },
    "bioworkbench.io": {
        "bioworkbench.errors",
        "bioworkbench.checks",
        "bioworkbench.units",
        "bioworkbench.variables",
        "bioworkbench.schema",
        "bioworkbench.store",
        "bioworkbench.campaign",
    },
    "bioworkbench.kinetics": {
        "bioworkbench.errors",
        "bioworkbench.checks",
        "bioworkbench.schema",
        "bioworkbench.variables",
    },
    "bioworkbench.outcomes": {
        "bioworkbench.errors",
        "bioworkbench.checks",
        "bioworkbench.variables",
        "bioworkbench.kinetics",
        "bioworkbench.monitoring",
        "bioworkbench.campaign",
    },
    "bioworkbench.simulate": {"bioworkbench.errors", "bioworkbench.campaign"},
}


def _layer_of(module: str) -> str | None:
    return next((layer for layer in _DATA_LAYER if module == layer or module.startswith(layer + ".")), None)


def test_data_layer_modules_import_only_the_layers_below():
    graph = _module_imports()
    wrong = []
    for module, imported in sorted(graph.items()):
        layer = _layer_of(module)
        if layer is None:
            continue
        for target in sorted(imported):
            allowed = _DATA_LAYER[layer]
            ok = _layer_of(target) == layer or target in allowed or any(target.startswith(a + ".") for a in allowed)
            if not ok:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)
    # the issue's own examples
    assert graph["bioworkbench.units"] <= {"bioworkbench.errors"}
    assert graph["bioworkbench.checks"] == {"bioworkbench.errors"}
    assert "bioworkbench.outcomes" not in {
        t for m, ts in graph.items() if m.startswith("bioworkbench.kinetics") for t in ts
    }


def test_data_layer_is_in_no_import_cycle():
    """No cycle through a data-layer module or package, in the whole package's import graph
    (modules grouped by their package under bioworkbench; the root ``__init__`` left out)."""

    def unit(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for module, imported in _module_imports().items():
        if module == "bioworkbench":
            continue
        graph.setdefault(unit(module), set()).update(
            unit(t) for t in imported if t != "bioworkbench" and unit(t) != unit(module)
        )
    # strongly connected components (Tarjan)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    cycles = [c for c in components if len(c) > 1 and any(_layer_of(m) for m in c)]
    assert not cycles, cycles


def test_moved_names_keep_their_old_import_paths():
    import bioworkbench.campaign as campaign
    import bioworkbench.errors as errors
    import bioworkbench.io as io
    import bioworkbench.io.folder as folder
    import bioworkbench.outcomes as outcomes
    import bioworkbench.schema as schema
    import bioworkbench.store as store
    import bioworkbench.units as units
    from bioworkbench import variables as _function  # bw.variables is the registry table function
    from bioworkbench.variables import (
        BIOMASS_ORDER,
        biomass_choices,
        conversions,
        get_variable,
        register_variable,
        registry,
        to_canonical,
        variables,
    )

    assert _function is variables
    assert units.to_canonical is to_canonical and units.conversions is conversions
    assert schema.suggest is errors.suggest and schema.registry is registry and schema.get_variable is get_variable
    assert schema.register_variable is register_variable and schema.variables is variables
    assert campaign.read_campaign is folder.read_campaign is io.read_campaign
    assert campaign.sha256_file is store.sha256_file
    assert outcomes.BIOMASS_ORDER is BIOMASS_ORDER and outcomes.biomass_choices is biomass_choices
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        units.nothing_here  # noqa: B018
