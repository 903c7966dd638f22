"""Which of the submission's functions a forbidden use belongs to.

A forbidden call inside one function costs that function's tests, not the whole file:
the static check's violations are mapped to the top-level definition (function, class or
assignment) that holds them, and from there to every top-level definition that names a
blocked one (`relu = MyReLU.apply`, a `train` that calls the blocked `forward`). A use
outside any definition (module-level code, a magic, a string run as code) still refuses
the whole submission: it runs when the file loads.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field

from grader.static_checks import Violation, cells_of, ipython_to_python, parse_python

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass
class Attribution:
    """Forbidden uses split into those of named definitions and those of the whole file."""

    # Top-level name -> the violation its tests fail for (its own, or one of a name it uses).
    blocked: dict[str, Violation] = field(default_factory=dict)
    # Top-level name -> the blocked name it uses, where the violation is not its own.
    through: dict[str, str] = field(default_factory=dict)
    whole_file: list[Violation] = field(default_factory=list)
    # Every violation inside a definition, with the names whose tests it costs (none: that
    # definition is replaced by a later one of the same name).
    placed: list[tuple[Violation, list[str]]] = field(default_factory=list)

    def reason(self, name: str) -> str:
        """Why a call to `name` is refused, for that test's message."""
        chain = [name]
        while chain[-1] in self.through:  # a forest: each name is blocked through one older one
            chain.append(self.through[chain[-1]])
        uses = "".join(f"uses `{used}`, which " for used in chain[1:])
        return (f"`{name}` {uses}breaks a rule: " if uses else "") + self.blocked[name].message()

    def messages(self) -> list[str]:
        """One line per violation, saying which tests it costs."""
        lines = []
        for v, names in self.placed:
            names = names + [n for n in self.through if self.blocked[n] is v]
            cost = (f"the tests of `{'`, `'.join(names)}` score zero" if names
                    else "in a definition a later one of the same name replaces")
            lines.append(f"{v.message()} ({cost})")
        return lines


@dataclass
class _Binding:
    """One top-level statement that binds names, with what it refers to."""

    names: list[str]
    refs: set[str]
    # Lines of code that runs only when called (function and method bodies), not at load.
    deferred: list[tuple[int, int]]


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, _DEFINITIONS):
        return [node.name]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    names = []
    for target in targets:
        names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return names


def _deferred(node: ast.stmt) -> list[tuple[int, int]]:
    """The body lines of a function, or of each method of a class (its decorators, default
    values and class-level statements run when the file loads)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [(node.body[0].lineno, node.end_lineno or node.body[0].lineno)]
    if isinstance(node, ast.ClassDef):
        return [span for child in node.body for span in _deferred(child)]
    return []


def _bindings(tree: ast.Module) -> list[_Binding]:
    out = []
    for node in tree.body:
        names = _bound_names(node)
        if names:
            refs = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - set(names)
            out.append(_Binding(names, refs, _deferred(node)))
    return out


def attribute(source: str | Sequence[str], violations: list[Violation]) -> Attribution:
    """Map each violation to the top-level definition holding it (see the module's docstring).

    `source` is what `find_violations` read: a module's text, or a notebook's cells.
    """
    cells, notebook = cells_of(source)
    trees: dict[int, list[_Binding]] = {}
    for index, text in enumerate(cells, 1):
        python = ipython_to_python(text, cell=index) if notebook else text
        tree = parse_python(python, cell=index if notebook else None) if python is not None else None
        trees[index if notebook else 0] = _bindings(tree) if tree is not None else []
    result = Attribution()
    final: dict[str, _Binding] = {}  # each name's last binding, the one that counts
    for key in sorted(trees):
        for binding in trees[key]:
            for name in binding.names:
                final[name] = binding
    for v in violations:
        holder = next((b for b in trees.get(v.cell or 0, [])
                       if any(first <= v.line <= last for first, last in b.deferred)), None)
        if holder is None:  # it runs as the file loads (or could not be placed)
            result.whole_file.append(v)
            continue
        names = [n for n in holder.names if final.get(n) is holder]
        result.placed.append((v, names))
        for name in names:
            result.blocked.setdefault(name, v)
    _spread(result, final)
    return result


def _spread(result: Attribution, final: dict[str, _Binding]) -> None:
    """Block every definition that names a blocked one, until nothing changes."""
    changed = True
    while changed:
        changed = False
        for name, binding in final.items():
            used = sorted(binding.refs & result.blocked.keys())
            if name not in result.blocked and used:
                result.blocked[name] = result.blocked[used[0]]
                result.through[name] = used[0]
                changed = True
