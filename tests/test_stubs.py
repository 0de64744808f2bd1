"""Every compiled module has a .pyi stub that tells the truth: each name a stub lists
exists in the module (classes, their methods and attributes, functions, constants),
with the same parameter names; and every public name of the module is in its stub."""
import ast
import importlib
import inspect
import pathlib
import types

import pytest

import ppsize._core

CORE = pathlib.Path(ppsize._core.__file__).parent
MODULES = sorted(p.stem for p in CORE.glob("*.pyx"))


def stub(module):
    return ast.parse((CORE / f"{module}.pyi").read_text())


def members(cls_node):
    """Names a stub class defines: methods, properties, annotated attributes."""
    out = {}
    for node in cls_node.body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign):
            out[node.target.id] = node
    return out


def params(fn_node):
    a = fn_node.args
    return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]


def public(obj, owner_module):
    """Public names defined by a module or class (not imported modules or functions
    from elsewhere, not what every object has)."""
    names = set()
    for n in dir(obj):
        if n.startswith("_") or (inspect.isclass(obj) and hasattr(object, n)):
            continue
        v = getattr(obj, n)
        if isinstance(v, types.ModuleType):
            continue
        if callable(v) and not inspect.isclass(obj) and getattr(v, "__module__", owner_module) != owner_module:
            continue                                 # e.g. as_int from ppsize._validate
        names.add(n)
    return names


def test_every_compiled_module_has_a_stub():
    assert MODULES and all((CORE / f"{m}.pyi").exists() for m in MODULES), MODULES
    # the stubs ship with the package (pyproject package-data)
    text = (CORE.parent.parent / "pyproject.toml").read_text() if (CORE.parent.parent / "pyproject.toml").exists() else ""
    if text:
        assert '"*.pyi"' in text and '"*.pxd"' in text


@pytest.mark.parametrize("module", MODULES)
def test_stub_names_exist_in_the_module(module):
    mod = importlib.import_module(f"ppsize._core.{module}")
    for node in stub(module).body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(mod, node.name)
            assert inspect.isclass(cls), f"{module}.{node.name} is not a class"
            for name, m in members(node).items():
                assert hasattr(cls, name), f"stub {module}.{node.name}.{name} is not in the module"
                real = getattr(cls, name)
                if isinstance(m, ast.FunctionDef) and name != "__init__" and callable(real):
                    try:
                        sig = inspect.signature(real)
                    except (TypeError, ValueError):
                        continue                     # a slot wrapper (__len__, __iter__)
                    assert params(m) == list(sig.parameters), f"{module}.{node.name}.{name}{sig}"
        elif isinstance(node, ast.FunctionDef):
            fn = getattr(mod, node.name)
            assert params(node) == list(inspect.signature(fn).parameters), f"{module}.{node.name}"
        elif isinstance(node, ast.AnnAssign):
            assert hasattr(mod, node.target.id), f"stub {module}.{node.target.id} is not in the module"


@pytest.mark.parametrize("module", MODULES)
def test_public_module_names_are_in_the_stub(module):
    mod = importlib.import_module(f"ppsize._core.{module}")
    tree = stub(module)
    listed = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))} | \
        {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    missing = public(mod, mod.__name__) - listed
    assert not missing, f"{module}.pyi lacks {sorted(missing)}"
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            missing = public(getattr(mod, node.name), mod.__name__) - set(members(node))
            assert not missing, f"{module}.pyi: {node.name} lacks {sorted(missing)}"
