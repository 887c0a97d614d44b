"""The import flow is counter_desk -> ui -> counter_app -> api_client, never back; hall_server
stands apart, and only the composition root (counter_desk) imports ui and hall_server.
`pii_mask` (the one copy of the log masking rules, issue 17) is a leaf every package may import:
it may import none of ours and no GUI.

Walks the AST of every module, so nothing dodges the rule by being lazy or indirect: an import
statement anywhere (inside a function too, relative ones resolved), `importlib.import_module`
or `__import__` (under any alias) with a banned name or with a name computed at run time, and
any string literal that names a banned package as a module (`"ui.app"`, `"hall_server"`,
`"hall_server.cli:app"`), which is how `find_spec`, `sys.modules[...]`, `getattr` chains and
entry-point strings would reach it. The second half proves the detector catches each form.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

OURS = {"api_client", "counter_app", "ui", "counter_desk", "hall_server"}
GUI = {"tkinter", "customtkinter", "_tkinter"}
#: leaves shared by every package (not in OURS, so no rule above bans them).
SHARED = {"pii_mask"}

#: package -> the top-level packages it must not reach in any form.
BANNED: dict[str, set[str]] = {
    "api_client": (OURS - {"api_client"}) | GUI,
    "counter_app": (OURS - {"counter_app", "api_client"}) | GUI,
    "ui": {"hall_server", "counter_desk"},
    "hall_server": (OURS - {"hall_server"}) | GUI,
    "counter_desk": set(),  # the composition root may import everything
    "pii_mask": OURS | GUI,  # a leaf: reaches nothing of ours
}

IMPORT_FUNCS = {"import_module", "__import__"}
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_][\w.]*)?")


@dataclass(frozen=True)
class Reach:
    line: int
    how: str  # "import" | "import_module" | "__import__" | "string" | "computed"
    name: str  # the module named ("" for a computed name)


def _module_of(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _resolve(node: ast.ImportFrom, package: list[str]) -> str:
    if node.level == 0:
        return node.module or ""
    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
    return ".".join([*base, *([node.module] if node.module else [])])


def reaches(source: str, filename: str = "<src>", package: list[str] | None = None) -> list[Reach]:
    """Every way `source` names another module: statements, import calls, module-name strings."""
    tree = ast.parse(source, filename=filename)
    pkg = package or []
    found: list[Reach] = []
    import_funcs = set(IMPORT_FUNCS)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "importlib":
            import_funcs |= {a.asname or a.name for a in node.names if a.name in IMPORT_FUNCS}
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Reach(node.lineno, "import", a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, pkg)
            found.append(Reach(node.lineno, "import", module))
            # `from pkg import sub`: the submodules are reached too.
            found += [Reach(node.lineno, "import", f"{module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            name = (func.id if isinstance(func, ast.Name)
                    else func.attr if isinstance(func, ast.Attribute) else "")
            if name in import_funcs and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    how = "__import__" if name == "__import__" else "import_module"
                    found.append(Reach(node.lineno, how, arg.value))
                else:
                    found.append(Reach(node.lineno, "computed", ""))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docstrings and _MODULE_NAME.fullmatch(node.value)):
            found.append(Reach(node.lineno, "string", node.value.split(":")[0]))
    return found


def bad_reaches(source: str, package: str, filename: str = "<src>",
                module: list[str] | None = None) -> list[Reach]:
    """The reaches of `source` (a module of `package`) that break the layering."""
    banned = BANNED[package]
    bad = []
    for r in reaches(source, filename, module or [package]):
        if r.how == "computed":
            if banned:  # only the composition root may import by a computed name
                bad.append(r)
        elif r.name.split(".")[0] in banned:
            bad.append(r)
    return bad


def violations(package: str) -> list[str]:
    out = []
    for f in sorted((ROOT / package).rglob("*.py")):
        mod = _module_of(f, ROOT)
        pkg = mod if f.name == "__init__.py" else mod[:-1]
        for r in bad_reaches(f.read_text(encoding="utf-8"), package, str(f), pkg):
            out.append(f"{f.relative_to(ROOT)}:{r.line} {r.how} {r.name or '<computed name>'}")
    return out


@pytest.mark.parametrize("package", sorted(BANNED))
def test_imports_flow_one_way(package: str) -> None:
    assert (ROOT / package).is_dir()
    assert violations(package) == []


def test_the_shared_leaf_is_allowed_everywhere() -> None:
    src = "from pii_mask import mask_text\n"
    for package in BANNED:
        assert bad_reaches(src, package) == [], package
    assert bad_reaches("from counter_app.errors import CounterError\n", "pii_mask")
    assert bad_reaches("from api_client import HallClient\n", "pii_mask")


def test_every_package_has_a_rule() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench", "build"}
    assert packages == set(BANNED)


# -- the detector catches every form (synthetic sources) -------------------------------------

DODGES = {
    "statement": "import ui.app\n",
    "statement as": "import hall_server.app as srv\n",
    "from": "from ui.app import DeskApp\n",
    "from package": "from ui import app\n",
    "lazy in a function": "def f():\n    from hall_server.settings import Settings\n",
    "import_module": "import importlib\nm = importlib.import_module('ui.app')\n",
    "import_module aliased": "from importlib import import_module as load\nm = load('ui')\n",
    "__import__": "m = __import__('hall_server')\n",
    "builtins.__import__": "import builtins\nm = builtins.__import__('ui.app')\n",
    "computed name": "import importlib\nname = 'u' + 'i'\nm = importlib.import_module(name)\n",
    "find_spec string": "import importlib.util\ns = importlib.util.find_spec('ui.resources')\n",
    "sys.modules string": "import sys\nm = sys.modules['hall_server.app']\n",
    "entry-point string": "target = 'hall_server.cli:main'\n",
    "getattr chain": "import importlib\nm = getattr(importlib, 'import_module')('ui')\n",
    "the root": "from counter_desk.wiring import build_core\n",
}


@pytest.mark.parametrize("form", sorted(DODGES))
def test_detector_catches(form: str) -> None:
    assert bad_reaches(DODGES[form], "counter_app"), form


def test_detector_allows_what_the_rules_allow() -> None:
    ok = ("from api_client import HallClient\nimport logging\n"
          "from counter_app.events import EventBus\nfrom . import errors\n"
          "log = logging.getLogger('counter_app.core')\n"
          "def f():\n    '''Mentions ui and hall_server in prose: not a module name.'''\n")
    assert bad_reaches(ok, "counter_app") == []
    root = "import importlib\nm = importlib.import_module(name)\nimport ui.app, hall_server\n"
    assert bad_reaches(root, "counter_desk") == []
    assert bad_reaches("from counter_app.core import CounterCore\n", "ui") == []
    assert bad_reaches("from hall_server import app\n", "ui")  # ui never reaches the server


def test_detector_resolves_relative_imports() -> None:
    found = reaches("from ..ui import app\n", package=["counter_app", "documents"])
    assert any(r.name.startswith("counter_app.ui") for r in found)  # stays inside the package
    assert bad_reaches("from .. import app\n", "counter_app",
                       module=["counter_app", "documents"]) == []


def test_detector_reads_real_files(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    import customtkinter\n", encoding="utf-8")
    found = reaches(bad.read_text(encoding="utf-8"), str(bad))
    assert Reach(2, "import", "customtkinter") in found
    assert bad_reaches(bad.read_text(encoding="utf-8"), "counter_app")
