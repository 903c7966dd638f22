"""Forbidden-API checks on the source, before any of it runs.

The manifest names modules (`torch`), calls (`.backward`, `torch.autograd.grad`) and
attributes (`torch.autograd`) a lesson forbids. Dynamic imports are flagged too
when any module is forbidden, since `__import__("to" + "rch")` is the obvious dodge;
the sandbox also refuses the import at run time.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from grader.assignment import Forbidden

DYNAMIC_IMPORT = ("__import__", "importlib", "exec", "eval", "compile")


@dataclass(frozen=True)
class Violation:
    """One forbidden use, with where it is and why it is refused."""

    line: int
    what: str
    reason: str

    def message(self) -> str:
        """The line shown to the student."""
        return f"line {self.line}: {self.what} is not allowed here: {self.reason}"


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return "." + ".".join(reversed(parts)) if parts else ""


class _Finder(ast.NodeVisitor):
    def __init__(self, forbidden: Forbidden) -> None:
        self.forbidden = forbidden
        self.found: list[Violation] = []
        self.aliases: dict[str, str] = {}

    def _module(self, name: str, line: int) -> None:
        top = name.partition(".")[0]
        if top in self.forbidden.modules:
            self.found.append(Violation(line, f"importing {name}", self.forbidden.modules[top]))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(alias.name, node.lineno)
            self.aliases[alias.asname or alias.name.partition(".")[0]] = (
                alias.name if alias.asname else alias.name.partition(".")[0])
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module:
            self._module(node.module, node.lineno)
            for alias in node.names:
                self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        self.generic_visit(node)

    def _resolve(self, dotted: str) -> str:
        head, _, rest = dotted.partition(".")
        if head in self.aliases:
            return self.aliases[head] + ("." + rest if rest else "")
        return dotted

    def visit_Attribute(self, node: ast.Attribute) -> None:
        full = self._resolve(_dotted(node))
        for attr, reason in self.forbidden.attributes.items():
            if full == attr or full.startswith(attr + "."):
                self.found.append(Violation(node.lineno, f"`{attr}`", reason))
                return
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        full = self._resolve(_dotted(node.func))
        for call, reason in self.forbidden.calls.items():
            # ".backward" forbids any method of that name; "torch.mm" that exact function
            if (call.startswith(".") and full.endswith(call)) or full == call:
                self.found.append(Violation(node.lineno, f"calling `{call.lstrip('.')}`", reason))
        if self.forbidden.modules and full.partition(".")[0] in DYNAMIC_IMPORT:
            self.found.append(Violation(
                node.lineno, f"`{full}`",
                "dynamic imports and code execution are not allowed in this exercise"))
        self.generic_visit(node)


def find_violations(source: str, forbidden: Forbidden) -> list[Violation]:
    """Every forbidden use in the source, in line order (empty when the source is clean)."""
    if not (forbidden.modules or forbidden.calls or forbidden.attributes):
        return []
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # the syntax error is reported on its own
    finder = _Finder(forbidden)
    finder.visit(tree)
    unique = {(v.line, v.what): v for v in finder.found}
    return sorted(unique.values(), key=lambda v: v.line)
