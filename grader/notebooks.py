"""Percent-format modules (`# %%` cells) to notebooks, so starter .py and .ipynb agree."""

from __future__ import annotations

from pathlib import Path

import nbformat


def cells_of(source: str) -> list[tuple[str, str]]:
    """(cell type, text) for each `# %%` cell of a percent-format module."""
    cells: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
            continue
        if not cells:
            cells.append(("code", []))
        cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        text = "\n".join(lines).strip("\n")
        if text:
            out.append((kind, text))
    return out


def module_to_notebook(source: str) -> nbformat.NotebookNode:
    """A notebook with one cell per percent-format cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for kind, text in cells_of(source):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(text))
    return nb


def write_notebook(module: Path, notebook: Path) -> None:
    """Write the notebook form of a percent-format module (cell ids stable per content)."""
    nb = module_to_notebook(module.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    nbformat.write(nb, str(notebook))
