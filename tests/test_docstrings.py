"""Every public callable carries a numpydoc docstring (issue 15, item 7).

Public callables are the names in ``__all__`` of each public module or package of bioworkbench
(no component of the module path starts with ``_``) that are defined in bioworkbench, and the
methods and properties of those classes whose names do not start with ``_``. Each must have:

- a docstring (a property needs no more than a one-line description);
- a ``Parameters`` section naming every argument besides ``self``/``cls`` and no argument the
  signature lacks (for a class: its constructor's arguments, under ``Parameters`` or ``Attributes``);
- a ``Returns`` (or ``Yields``) section when it returns something: its return annotation is not
  ``None``, or, unannotated, its body has a ``return <value>``;
- a ``Raises`` section naming each :class:`~bioworkbench.errors.BioWorkbenchError` subclass its own
  body raises (a base class of it counts).

The docstrings are read with numpydoc's parser and validator (``numpydoc.validate``, error codes
GL08, PR01, PR02 and RT01); the return annotation and the ``Raises`` rule are checked here.
"""

from __future__ import annotations

import ast
import enum
import functools
import importlib
import inspect
import pkgutil
import textwrap
from collections.abc import Callable, Iterator

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")
from numpydoc.docscrape import get_doc_object  # noqa: E402

import bioworkbench  # noqa: E402
from bioworkbench.errors import BioWorkbenchError  # noqa: E402

CODES = {"GL08", "PR01", "PR02", "RT01"}

# owned by a concurrent change; to be documented
ALLOWED: set[str] = set()


def public_modules() -> Iterator[str]:
    """Names of the public modules and packages of bioworkbench (no component starting with ``_``)."""
    yield "bioworkbench"
    for info in pkgutil.walk_packages(bioworkbench.__path__, "bioworkbench."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield info.name


def _defined_here(obj: object) -> bool:
    return (getattr(obj, "__module__", None) or "").startswith("bioworkbench")


def public_callables() -> dict[str, object]:
    """Every public callable by its defining name (``module.qualname``), each once.

    Returns
    -------
    dict
        ``"bioworkbench.kinetics.rates.ivcd"`` -> the function, class, method or property.
    """
    found: dict[str, object] = {}
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj) or not _defined_here(obj):
                continue
            found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
            if not inspect.isclass(obj):
                continue
            for owner in (k for k in obj.__mro__ if _defined_here(k)):  # inherited ones under their class
                for attr, member in vars(owner).items():
                    if attr.startswith("_"):
                        continue
                    if isinstance(member, staticmethod | classmethod):
                        member = member.__func__
                    if isinstance(member, property | functools.cached_property) or inspect.isfunction(member):
                        found.setdefault(f"{owner.__module__}.{owner.__qualname__}.{attr}", member)
    return found


def _function_source(func: Callable) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return None
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
    return None


def _own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function body, leaving out nested functions, lambdas and classes."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        yield child
        yield from _own_nodes(child)


def _raised_errors(func: Callable, tree: ast.AST) -> set[type]:
    """The BioWorkbenchError subclasses that the function's own body raises by name."""
    import bioworkbench.errors as errors

    raised = set()
    for node in _own_nodes(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(exc, ast.Name):
            cls = func.__globals__.get(exc.id, getattr(errors, exc.id, None))
        elif isinstance(exc, ast.Attribute):
            cls = getattr(errors, exc.attr, None)
        else:
            continue
        if inspect.isclass(cls) and issubclass(cls, BioWorkbenchError):
            raised.add(cls)
    return raised


def _returns_something(func: Callable, tree: ast.AST | None) -> bool:
    annotation = inspect.signature(func, eval_str=False).return_annotation
    if annotation is not inspect.Signature.empty:
        return annotation not in (None, "None", "NoReturn", "Never") and annotation is not type(None)
    if tree is None:
        return False
    for node in _own_nodes(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                return True
    return False


def _fields_documented_in_place(cls: type) -> set[str]:
    """Fields documented where they are declared, as Sphinx autodoc reads them: a ``#:`` comment on
    the line(s) above, or a string literal on the line after."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return set()
    tree = ast.parse(textwrap.dedent("".join(lines)))
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    found = set()
    for i, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        after = body[i + 1] if i + 1 < len(body) else None
        docstring = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        comment = lines[node.lineno - 2].strip().startswith("#:") if node.lineno >= 2 else False
        if docstring or comment:
            found.add(node.target.id)
    return found


def _class_problems(cls: type) -> list[str]:
    doc = get_doc_object(cls)
    if not (cls.__doc__ or "").strip():
        return ["GL08 no docstring"]
    if issubclass(cls, BaseException | enum.Enum) and "__init__" not in vars(cls):
        return []
    try:
        signature = inspect.signature(cls, eval_str=False)
    except (TypeError, ValueError):
        return []
    params = [
        ("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "") + p.name
        for p in signature.parameters.values()
        if not p.name.startswith("_")  # a private argument is not part of the public signature
    ]
    documented = {p.name.replace("\\", "") for s in ("Parameters", "Other Parameters", "Attributes") for p in doc[s]}
    documented |= {n.strip() for name in list(documented) for n in name.split(",")}
    documented |= _fields_documented_in_place(cls)
    missing = [p for p in params if p not in documented]
    return [f"PR01 parameters not documented: {missing}"] if missing else []


def problems(obj: object) -> list[str]:
    """What the docstring of one public callable lacks, as ``"CODE message"`` lines.

    Parameters
    ----------
    obj
        A function, class, method, property or cached property.

    Returns
    -------
    list of str
        Empty when the docstring is complete.
    """
    if isinstance(obj, property | functools.cached_property):
        func = obj.fget if isinstance(obj, property) else obj.func
        return [] if (func.__doc__ or "").strip() else ["GL08 no docstring"]
    if inspect.isclass(obj):
        return _class_problems(obj)
    func = inspect.unwrap(obj)
    result = numpydoc_validate.validate(get_doc_object(func))
    found = [f"{code} {message}" for code, message in result["errors"] if code in CODES and code != "RT01"]
    if not (func.__doc__ or "").strip():
        return found
    doc = get_doc_object(func)
    tree = _function_source(func)
    if not doc["Returns"] and not doc["Yields"] and _returns_something(func, tree):
        found.append("RT01 no Returns section (the function returns a value)")
    if tree is not None:
        named = {(p.type or p.name).strip() for p in doc["Raises"]}
        named = {part.strip().strip("`~:").rsplit(".", 1)[-1] for n in named for part in n.split(",")}
        for cls in sorted(_raised_errors(func, tree), key=lambda c: c.__name__):
            if not any(base.__name__ in named for base in cls.__mro__ if issubclass(base, BioWorkbenchError)):
                found.append(f"RS01 raises {cls.__name__} but the Raises section does not name it")
    return found


@functools.cache
def all_problems() -> dict[str, list[str]]:
    """Problems of every public callable, by defining name; callables without problems are left out."""
    out = {}
    for name, obj in public_callables().items():
        found = problems(obj)
        if found:
            out[name] = found
    return out


def test_public_callables_are_found():
    names = public_callables()
    assert "bioworkbench.errors.suggest" in names
    assert "bioworkbench.campaign.views.CampaignViews.filter_batches" in names
    assert len(names) > 300


def test_every_public_callable_has_a_numpydoc_docstring():
    found = {name: p for name, p in all_problems().items() if name not in ALLOWED}
    lines = [f"{name}: {'; '.join(p)}" for name, p in sorted(found.items())]
    assert not found, f"{len(found)} public callables lack docstring sections:\n" + "\n".join(lines)


def test_allow_list_is_not_stale():
    """Each allowed name still exists and still fails: remove it from ALLOWED once it is documented."""
    names = public_callables()
    stale = sorted(n for n in ALLOWED if n not in names or not problems(names[n]))
    assert not stale, f"documented now or gone, remove from ALLOWED: {stale}"


def test_the_check_can_fail():
    """A function without sections, and one raising an error it does not name, are both caught."""
    from bioworkbench.errors import ConfigError

    def bare(observations: int, *, prob: float = 0.9) -> int:
        """Do something."""
        return observations

    def raises(value: int) -> None:
        """Check a value.

        Parameters
        ----------
        value
            The value.
        """
        if value < 0:
            raise ConfigError("negative")

    codes = [p.split()[0] for p in problems(bare)]
    assert codes == ["PR01", "RT01"]
    assert [p.split()[0] for p in problems(raises)] == ["RS01"]
