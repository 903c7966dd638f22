"""Forbidden-API checks on a submission's code, before any of it runs.

The manifest names modules (`torch`), calls (`.backward` is a method of that name on anything,
`torch.autograd.grad` that exact API) and attributes (`torch.autograd`) a lesson forbids.
These checks run on the trusted side and are the first line, not the only one: the sandbox
enforces the same bans at run time.

What is read:

- A module is read as Python. A notebook is read cell by cell, as IPython reads it: each cell
  goes through IPython's own input transforms (prompts, `%magic`, `%%cell_magic`, `!shell`,
  `obj?`), so `%time import torch` is the `import torch` it runs. A cell that does not parse
  cannot run either, and it does not switch off the checks of the other cells.
- Code that runs from a string is read too when the string is a literal (`exec("...")`,
  `get_ipython().run_cell("...")`, the argument of `%time`, `%timeit`, `%prun`, `%debug` and
  the body of `%%time`, `%%timeit`, `%%capture`, `%%prun`, `%%debug`, `%%writefile`, `%%python3`).
- Names are followed statically: imports and their aliases (`from torch import autograd as a`),
  names and attributes bound by assignment to a module or function (`g = torch.nn.functional`,
  `f = F.conv2d`, `self.g = F`), `getattr(x, "name")`, `x.__dict__["name"]`, `vars(x)["name"]`
  and `operator.attrgetter("a.b")(x)` with literal names, and `importlib.import_module("m")`
  and `__import__("m")` with a literal module.
  A forbidden function is refused when it is named, not only when it is called
  (`map(F.conv2d, ...)`, `functools.partial(F.conv2d)`).
- Where any module is forbidden, so is every way around an import statement: `__import__`,
  `importlib`, `pkgutil`, `runpy`, `exec`/`eval`/`compile`, `sys.modules`, `ctypes`, `pickle`,
  and starting another program (`!cmd`, `%%bash`, `%%script`, `%pip`, `%system`, `subprocess`,
  `os.system`), since a program started that way is outside the guest's run-time bans.
  Magics that run code the grader cannot read (`%run`, `%load`, `%macro`, `%store`,
  `%alias_magic`, `%autocall`) are refused wherever anything is forbidden.

What static analysis cannot see, and the run-time bans must stop:

- names computed at run time, however simply (`getattr(F, "conv" + "2d")`, `"".join(...)`, a
  name from data, `chr` codes, base64), objects reached through other objects (`type(x).__mro__`,
  `gc`, `vars(module)` walked in a loop, `sys.modules["torch"]` where torch itself is allowed),
  other paths to the same API (`torch.optim.sgd.SGD`, `torch._C._nn.mse_loss`), and bindings
  kept in containers (`fs = [F.conv2d]` is refused for naming F.conv2d, but
  `d = {"f": F}; d["f"].conv2d` is not seen); names are followed without regard to scope or
  order, so an alias made anywhere counts everywhere;
- code that arrives at run time: files written then imported, `exec` of a non-literal string
  where no module is forbidden, a shell command's own code where shell commands are allowed,
  and cells that IPython reads differently because earlier code changed how IPython reads
  (input transformers installed from Python are refused by name, but not every route is known).

Reading is bounded: nesting too deep for Python's parser, and IPython syntax that would take
too many passes to read, are refused with a message instead of costing the grader its stack
or its CPU.
"""

from __future__ import annotations

import ast
import getopt
import re
import tokenize
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grader.assignment import Forbidden
from grader.errors import InvalidSubmission

MAX_ROUNDS = 6  # IPython transform passes over one cell; honest cells need one
MAX_NESTED = 500  # pieces of code found in strings and magics, in one submission
MAX_NESTING = 6  # code in a string in a magic in a string...
READ_BUDGET = 1_000_000  # characters tokenised and parsed for one submission's checks
ROUND_CHARS = 300_000  # a cell is tokenised again only while rounds x its size stay under this
CACHE_CHARS = 2_000_000  # cells whose transform is remembered (read_submission, then the checks)
MAX_ALIASES = 16  # values remembered for one name
MAX_CHAIN = 48  # names followed in one dotted chain

DYNAMIC_MODULES = frozenset({
    "importlib", "imp", "_imp", "pkgutil", "runpy", "zipimport", "_frozen_importlib",
    "_frozen_importlib_external", "ctypes", "_ctypes", "code", "codeop", "pydoc", "pickle",
    "_pickle", "cPickle", "dill", "cloudpickle", "shelve", "marshal", "subprocess", "pty",
})
DYNAMIC_BUILTINS = frozenset({"__import__", "exec", "eval", "compile"})
DYNAMIC_ATTRS = frozenset({"__import__", "__builtins__", "__subclasses__", "__globals__", "__loader__",
                           "import_module", "load_module", "exec_module", "run_module", "run_path",
                           "f_builtins", "f_globals", "_getframe"})
DYNAMIC_WORDS = frozenset({"sys", "os", "posix", "nt", "builtins", "create_subprocess_exec",
                           "create_subprocess_shell"})
SYS_HOOKS = frozenset({"modules", "meta_path", "path_hooks", "path_importer_cache"})
PROCESS_CALLS = ("system", "popen", "exec", "spawn", "posix_spawn", "fork_exec", "create_subprocess")
EXEC_CALLS = frozenset({"exec", "eval", "compile", "builtins.exec", "builtins.eval", "builtins.compile"})
# Attributes that change how IPython reads the cells after them.
IPYTHON_READERS = frozenset({"input_transformers_post", "input_transformers_cleanup",
                             "input_transformer_manager", "ast_transformers", "prefilter_manager",
                             "autocall", "alias_manager"})

# IPython magics by what they do with their argument (the line) and body (a %% cell's text).
PYTHON_MAGICS = frozenset({"time", "timeit", "prun", "debug", "capture"})  # their body is code
MAGIC_OPTIONS = {"timeit": ("n:r:tcp:qo", ()), "prun": ("D:l:rs:T:q", ()),  # their line is code after
                 "debug": ("b:", ("breakpoint=",))}  # these options (%time takes none)
SCRIPT_MAGICS = frozenset({"python", "python2", "python3", "pypy"})
SHELL_MAGICS = frozenset({
    "system", "sx", "!", "bash", "sh", "script", "perl", "ruby", "pip", "conda", "mamba",
    "micromamba", "uv", "alias", "rehashx", "man", "ls", "cat", "cp", "mv", "rm", "mkdir", "rmdir",
    "ldir", "lf", "lk", "ll", "lx", "sc",
}) | SCRIPT_MAGICS
OPAQUE_MAGICS = frozenset({"run", "load", "loadpy", "macro", "store", "edit", "ed", "alias_magic",
                           "autocall", "code_wrap", "paste", "cpaste"})
IMPORT_MAGICS = frozenset({"load_ext", "reload_ext", "aimport"})
HELP_MAGICS = frozenset({"pinfo", "pinfo2", "pdef", "pdoc", "psource", "pfile"})
WRITE_MAGICS = frozenset({"writefile", "file"})
QUIET_MAGICS = frozenset({
    "matplotlib", "config", "autoreload", "who", "whos", "who_ls", "pwd", "cd", "env", "set_env",
    "precision", "xmode", "pdb", "history", "hist", "reset", "reset_selective", "xdel", "lsmagic",
    "magic", "quickref", "page", "colors", "notebook", "connect_info", "qtconsole", "tb",
    "doctest_mode", "automagic", "pprint", "save", "logstart", "logstop", "logon", "logoff",
    "logstate", "bookmark", "dhist", "dirs", "popd", "pushd", "gui", "html", "HTML", "javascript",
    "js", "latex", "markdown", "svg", "SVG", "psearch", "rerun", "recall", "autosave", "autoawait",
    "pylab", "unalias", "unload_ext", "killbgscripts", "clear", "less", "more", "pycat", "pastebin",
})
IPYTHON_SHELL_CALLS = frozenset({"system", "system_raw", "system_piped", "getoutput"})
IPYTHON_CODE_CALLS = frozenset({"run_cell", "run_cell_async", "ex", "ev", "run_code", "run_ast_nodes",
                                "safe_execfile", "safe_execfile_ipy", "safe_run_module", "magic",
                                "run_line_magic", "run_cell_magic", "define_macro"})

# Where IPython's special syntax can be: a line starting with an escape (% ! ? , ; /), a line
# ending in ?, an assignment from a magic or shell command. A cell matching none is plain Python.
_SPECIAL = re.compile(r"^[ \t\f]*[%!?,;/]|\?[ \t\f]*$|=[\s\\]*[%!]", re.M)
_OPENS, _CLOSES = frozenset("([{"), frozenset(")]}")
READER_REASON = "it changes how IPython reads the cells after it, so the grader could not check them"
NESTED_HINT = ("split the expression into steps with intermediate variables (and keep blocks "
               "fewer than 20 deep), then submit again")


class UnreadableCode(InvalidSubmission):
    """Code the grader cannot read within its bounds: nested too deeply, or too costly to read."""

    def __init__(self, message: str, *, cell: int | None = None, line: int = 0) -> None:
        super().__init__(message)
        self.cell, self.line = cell, line


@dataclass(frozen=True)
class Violation:
    """One forbidden use, with where it is and why it is refused."""

    line: int
    what: str
    reason: str
    cell: int | None = None
    text: str = ""  # the whole message, where it is not "what is not allowed: reason"

    def message(self) -> str:
        """The line shown to the student."""
        where = f"cell {self.cell}, line {self.line}" if self.cell else f"line {self.line}"
        if self.text:
            return f"{where}: {self.text}" if self.line else self.text
        return f"{where}: {self.what} is not allowed here: {self.reason}"


def _where(cell: int | None) -> str:
    return f"cell {cell}" if cell else "your file"


def _too_deep(cell: int | None, detail: str) -> UnreadableCode:
    where = f" (cell {cell})" if cell else ""
    return UnreadableCode(f"your file is nested too deeply for the grader to read{where}: {detail}; "
                          + NESTED_HINT, cell=cell)


# --- reading: Python and IPython source to syntax trees, within bounds -------------------------


class _Budget:
    """Characters the reader may still tokenise or parse; UnreadableCode when spent."""

    def __init__(self, chars: int = READ_BUDGET) -> None:
        self.left = chars

    def charge(self, chars: int, cell: int | None) -> None:
        self.left -= chars
        if self.left < 0:
            raise UnreadableCode(
                f"{_where(cell)} holds more code (with the code inside its strings and magics) than "
                f"the grader reads, {READ_BUDGET:,} characters in all; submit only the code the "
                "exercise needs", cell=cell)


def parse_python(source: str, *, cell: int | None = None, budget: _Budget | None = None) -> ast.Module | None:
    """The source's syntax tree; None when it does not parse (it cannot run either).

    Raises UnreadableCode when it is nested too deeply for Python's own parser, which then
    could not run it either, but would crash a grader that let the error through.
    """
    if budget is not None:
        budget.charge(len(source), cell)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings are the student's, not the grader's log
            return ast.parse(source)
    except SyntaxError as exc:
        text = str(exc.msg)
        if "too many nested" in text or "too many levels of indentation" in text:
            raise _too_deep(cell, f"Python's parser says {text!r}") from None
        return None
    except (RecursionError, MemoryError):
        raise _too_deep(cell, "Python's parser ran out of stack") from None
    except ValueError:  # null bytes, on the Python versions that raise ValueError for them
        return None


class _Cache:
    """Recent cells' transforms, so that read_submission and the checks tokenise a cell once."""

    def __init__(self, chars: int) -> None:
        self.chars, self.size = chars, 0
        self.items: dict[str, str | None] = {}

    def get(self, key: str, default: object) -> object:
        return self.items.get(key, default)

    def put(self, key: str, value: str | None) -> None:
        if self.size + len(key) > self.chars:
            self.items, self.size = {}, 0
        self.items[key] = value
        self.size += len(key)


_MISSING = object()
_TRANSFORMED = _Cache(CACHE_CHARS)


def _shifted(transformer: Any, rows: int) -> Any:
    """The transformer with its line numbers relative to a window starting `rows` lines down."""
    for name in ("start_line", "q_line"):
        if hasattr(transformer, name):
            setattr(transformer, name, getattr(transformer, name) - rows)
    return transformer


def _balanced(tokens: list) -> bool:
    """Whether a logical line leaves the tokenizer as it found it (brackets closed, never below 0)."""
    level = 0
    for token in tokens:
        if token.type == tokenize.OP:
            level += (token.string in _OPENS) - (token.string in _CLOSES)
        if level < 0:
            return False
    return level == 0


def _one_round(it: Any, transformers: list, lines: list[str]) -> tuple[list[str], bool]:
    """Transform, in order, the special syntax that one tokenisation finds on logical lines.

    Where a special line could change how the lines after it tokenise (a bracket it leaves
    open or closes too often, lines it swallows), the round stops after it and the caller
    tokenises again, as IPython does after every line. Returns (lines, whether to go again).
    """
    out: list[str] = []
    cursor = 0
    tokens_by_line = it.make_tokens_by_line(lines)
    # A tokenisation that stopped short (an unclosed string) may hide special lines after it.
    complete = bool(tokens_by_line) and tokens_by_line[-1][-1].type == tokenize.ENDMARKER
    for tokens in tokens_by_line:
        found = [t for cls in transformers if (t := cls.find([tokens])) is not None]
        if not found:
            continue
        transformer = min(found, key=lambda t: t.sortby())
        start = transformer.start_line
        if not cursor <= start < len(lines):
            return out + lines[cursor:], True
        continued = it.find_end_of_continued_line(lines, start)
        last = min(max(tokens[-1].start[0] - 1, start), len(lines) - 1)
        end = max(last, continued)
        try:
            new = _shifted(transformer, start).transform(lines[start:end + 1])
        except SyntaxError:  # IPython leaves this one as it is (and the cell will not parse)
            continue
        out += lines[cursor:start] + new
        cursor = end + 1
        if last > continued or not _balanced(tokens):
            return out + lines[cursor:], True
    return out + lines[cursor:], cursor > 0 and not complete


def ipython_to_python(cell_source: str, *, cell: int | None = None,
                      budget: _Budget | None = None) -> str | None:
    """The Python IPython runs for a cell (magics as `get_ipython()` calls); None if IPython cannot.

    It uses IPython's own transforms. IPython's TransformerManager re-tokenises the whole cell
    after each special line (up to 500 times), so a cell of many magics costs seconds of CPU;
    here one tokenisation transforms every special line it finds, each on its own window of
    lines, and a cell is tokenised at all only when a line could hold special syntax.
    """
    found = _TRANSFORMED.get(cell_source, _MISSING)
    if found is not _MISSING:
        return found  # type: ignore[return-value]
    python = _transform(cell_source, cell, budget or _Budget())
    _TRANSFORMED.put(cell_source, python)
    return python


def _transform(cell_source: str, cell: int | None, budget: _Budget) -> str | None:
    from IPython.core import inputtransformer2 as it

    manager = it.TransformerManager()
    rounds = max(2, min(MAX_ROUNDS, ROUND_CHARS // max(len(cell_source), 1)))
    try:
        lines = (cell_source if cell_source.endswith("\n") else cell_source + "\n").splitlines(True)
        for transform in manager.cleanup_transforms + manager.line_transforms:
            lines = transform(lines)
        for _ in range(rounds):
            text = "".join(lines)
            if not _SPECIAL.search(text):
                return text
            budget.charge(len(text), cell)
            lines, again = _one_round(it, manager.token_transformers, lines)
            if not again:
                return "".join(lines)
    except UnreadableCode:
        raise
    except Exception:  # IPython shows the student this error and runs nothing of the cell
        return None
    raise UnreadableCode(
        f"{_where(cell)} uses IPython syntax (%, !, ?) with brackets or strings left open, which the "
        "grader cannot read in the passes it allows; put each magic or shell command on its own line, "
        "and close its brackets and strings", cell=cell)


def read_code(cells: Sequence[str], *, notebook: bool) -> None:
    """Check the grader can read every cell (or the module); UnreadableCode says what to change."""
    budget = _Budget()
    for index, text in enumerate(cells, 1):
        cell = index if notebook else None
        python = ipython_to_python(text, cell=cell, budget=budget) if notebook else text
        if python is not None:
            parse_python(python, cell=cell, budget=budget)


# --- names: what an expression refers to, statically -----------------------------------------


def _literal_str(node: ast.AST) -> str | None:
    """The value of a string literal ("conv2d", f"conv2d"), else None.

    Only literals: a name built from pieces ("conv" + "2d", "".join(...)) is computed at run
    time as far as these checks go, and left to the run-time bans.
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and all(
            isinstance(v, ast.Constant) and isinstance(v.value, str) for v in node.values):
        return "".join(v.value for v in node.values)  # type: ignore[attr-defined]
    return None


def _arg(node: ast.Call, index: int, name: str = "") -> ast.AST | None:
    if len(node.args) > index and not any(isinstance(a, ast.Starred) for a in node.args[:index + 1]):
        return node.args[index]
    return next((k.value for k in node.keywords if name and k.arg == name), None)


def _literal_attr(node: ast.AST) -> tuple[ast.AST, str] | None:
    """(object, "name") for getattr(obj, "name"), obj.__getattribute__("name"), obj.__dict__["name"]."""
    if isinstance(node, ast.Subscript):
        key = _literal_str(node.slice)
        base = node.value
        if key is None:
            return None
        if isinstance(base, ast.Attribute) and base.attr == "__dict__":
            return base.value, key
        if (isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "vars"
                and len(base.args) == 1):
            return base.args[0], key
        return None
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    fname = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if fname == "getattr" or (fname == "__getattribute__" and isinstance(func, ast.Attribute)
                              and isinstance(func.value, ast.Name) and func.value.id in ("object", "type")):
        obj, key = _arg(node, 0), _arg(node, 1)
    elif fname == "__getattribute__" and isinstance(func, ast.Attribute):
        obj, key = func.value, _arg(node, 0)
    elif (isinstance(func, ast.Call) and len(node.args) == 1
          and (getattr(func.func, "id", None) or getattr(func.func, "attr", None)) == "attrgetter"):
        obj, key = node.args[0], _arg(func, 0)  # operator.attrgetter("a.b")(obj)
    else:
        return None
    name = _literal_str(key) if key is not None else None
    return (obj, name) if obj is not None and name else None


def _import_call(node: ast.AST) -> str | None:
    """The module a literal __import__("m") or importlib.import_module("m") returns."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    fname = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if fname not in ("__import__", "import_module"):
        return None
    arg = _arg(node, 0, "name")
    name = _literal_str(arg) if arg is not None else None
    if not name:
        return None
    if fname == "__import__" and not (_arg(node, 3, "fromlist") or len(node.args) > 3):
        return name.partition(".")[0]  # __import__("a.b") returns a, unless fromlist is given
    return name


def _is_get_ipython(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and not node.args
            and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "get_ipython")


def _dotted(node: ast.AST) -> str:
    """`a.b.c` for a chain of names and literal attribute lookups; `.b.c` when its base is unknown."""
    parts: list[str] = []
    while True:
        if len(parts) > MAX_CHAIN:
            return ""  # every shorter chain inside it is a node of its own, and checked
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif (step := _literal_attr(node)) is not None:
            node, name = step
            parts += reversed(name.split("."))
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            break
        elif (module := _import_call(node)) is not None:
            parts.append(module)
            break
        elif _is_get_ipython(node):
            parts.append("get_ipython()")
            break
        else:
            return "." + ".".join(reversed(parts)) if parts else ""
    return ".".join(reversed(parts))


def _matches(name: str, rule: str) -> bool:
    """Whether a resolved name is the rule's API (".m": a method m on anything; "a.b": that API)."""
    if rule.startswith("."):
        return rule[1:] in name.split(".")[1:]
    return name == rule or name.startswith(rule + ".")


def _options(line: str, spec: str, longs: tuple[str, ...]) -> str | None:
    """The code left after a magic's options, as IPython's option parser leaves it (None: usage error)."""
    from IPython.utils.process import arg_split

    try:
        _, args = getopt.getopt(arg_split(line, posix=False, strict=False), spec, list(longs))
    except (getopt.GetoptError, ValueError):
        return None
    return " ".join(args)


# --- the finder --------------------------------------------------------------------------------


@dataclass
class _Unit:
    """A piece of Python to check: a module, a cell, or code found in a string or a magic."""

    tree: ast.Module
    nodes: list[ast.AST]
    cell: int | None
    offset: int  # added to the tree's line numbers
    ipython: bool  # runs in an IPython kernel
    depth: int  # strings deep (0: the file itself)


class _Finder:
    def __init__(self, forbidden: Forbidden) -> None:
        self.forbidden = forbidden
        self.found: dict[tuple, Violation] = {}
        self.aliases: dict[str, set[str]] = {}
        self.stars: set[str] = set()
        self.local: set[str] = set()
        self.budget = _Budget()
        self.expanded: set[int] = set()
        self.bound: set[int] = set()  # units whose imports and assignments are recorded
        self.pairs: list[tuple[str, ast.AST]] = []
        self.heads: set[str] = set()  # first names of the aliases
        self.nested_units = 0
        # A resolved name can break a rule only if one of its parts is one of these words.
        self.triggers = {r[1:] if r.startswith(".") else r.partition(".")[0]
                         for r in [*forbidden.attributes, *forbidden.calls]} | IPYTHON_READERS
        if forbidden.modules:
            self.triggers |= DYNAMIC_BUILTINS | DYNAMIC_ATTRS | DYNAMIC_WORDS
        mods = ", ".join(sorted(forbidden.modules))
        self.dynamic_reason = (f"this exercise forbids {mods}, so dynamic imports and running code from "
                               "strings are not allowed: the grader cannot check what they would load")
        self.process_reason = (f"this exercise forbids {mods}, so starting other programs (shell commands, "
                               "another Python) is not allowed: they run outside the grader's checks; "
                               "remove the line (what the exercise needs is already installed)")

    # reporting

    def add(self, unit: _Unit, node: ast.AST | int, key: str, what: str, reason: str, text: str = "") -> None:
        line = (node if isinstance(node, int) else getattr(node, "lineno", 1)) + unit.offset
        self.found.setdefault((unit.cell or 0, line, key), Violation(line, what, reason, unit.cell, text))

    def violations(self) -> list[Violation]:
        return sorted(self.found.values(), key=lambda v: (v.cell or 0, v.line))

    # reading

    def unit(self, source: str, cell: int | None, offset: int, *, ipython: bool, depth: int) -> _Unit | None:
        python = ipython_to_python(source, cell=cell, budget=self.budget) if ipython else source
        tree = None if python is None else parse_python(python, cell=cell, budget=self.budget)
        if tree is None:
            return None  # it does not parse, so it cannot run either
        return _Unit(tree, list(ast.walk(tree)), cell, offset, ipython, depth)

    def nested(self, parent: _Unit, node: ast.AST, source: str, *, ipython: bool,
               body: bool = False) -> _Unit | None:
        """A unit for code found in a string of `parent` (a magic's body starts a line lower)."""
        line = getattr(node, "lineno", 1) + parent.offset
        self.nested_units += 1
        if self.nested_units > MAX_NESTED:
            raise UnreadableCode(
                f"{_where(parent.cell)} runs more than {MAX_NESTED} pieces of code from magics and strings "
                "(%time, exec, ...), more than the grader reads; write the code out directly",
                cell=parent.cell)
        if parent.depth >= MAX_NESTING:
            self.add(parent, node, "nesting", "", "", text=(
                f"code inside strings or magics nested more than {MAX_NESTING} levels deep is more than "
                "the grader reads; write the code out directly"))
            return None
        try:
            return self.unit(source, parent.cell, line if body else line - 1, ipython=ipython,
                             depth=parent.depth + 1)
        except UnreadableCode as exc:
            if self.budget.left < 0:
                raise  # the reading budget is spent: stop here
            self.add(parent, node, "unreadable", "", "", text=str(exc))
            return None

    # names

    def names(self, node: ast.AST) -> set[str]:
        """Every API the expression may name: itself, and through each alias of a prefix of it."""
        dotted = _dotted(node)
        if not dotted:
            return set()
        out = {dotted}
        head = dotted.partition(".")[0]
        if head not in self.heads and not self.stars:
            return out
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            for value in self.aliases.get(".".join(parts[:i]), ()):
                out.add(".".join([value, *parts[i:]]))
        if self.stars and head and head not in self.local:
            out |= {f"{m}.{dotted}" for m in self.stars}
        return out

    def bind(self, target: str, values: set[str]) -> bool:
        current = self.aliases.setdefault(target, set())
        self.heads.add(target.partition(".")[0])
        new = {v for v in values if v and v != target and not v.startswith(target + ".")} - current
        room = MAX_ALIASES - len(current)
        if not new or room <= 0:
            return False
        current.update(sorted(new)[:room])
        return True

    def bind_imports(self, units: list[_Unit]) -> None:
        """Record imports as aliases and star imports, and the assignments to resolve."""
        for unit in units:
            if id(unit) in self.bound:
                continue
            self.bound.add(id(unit))
            for node in unit.nodes:
                if isinstance(node, ast.Import):
                    for a in node.names:
                        top = a.name.partition(".")[0]
                        self.bind(a.asname or top, {a.name if a.asname else top})
                        self.local.add(a.asname or top)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    for a in node.names:
                        if a.name == "*":
                            self.stars.add(node.module)
                        else:
                            self.bind(a.asname or a.name, {f"{node.module}.{a.name}"})
                            self.local.add(a.asname or a.name)
                else:
                    self.pairs += _assignments(node, self.local)

    def bind_all(self, units: list[_Unit]) -> None:
        """Aliases from imports and assignments, followed until nothing new is learnt."""
        self.bind_imports(units)
        for _ in range(8):
            changed = False
            for target, value in self.pairs:
                names = self.names(value)
                if names and not any(n.startswith(".") for n in names):
                    changed |= self.bind(target, names)
            if not changed:
                return

    # rules

    def module_rule(self, unit: _Unit, node: ast.AST, name: str) -> bool:
        """Flag importing a forbidden module (or, where modules are forbidden, an import machinery one)."""
        top = name.partition(".")[0]
        for module, reason in self.forbidden.modules.items():
            if name == module or name.startswith(module + ".") or top == module:
                self.add(unit, node, f"module:{module}", f"importing {name}", reason)
                return True
        if self.forbidden.modules and top in DYNAMIC_MODULES:
            self.add(unit, node, "dynamic", f"importing {name}",
                     self.process_reason if top in ("subprocess", "pty") else self.dynamic_reason)
            return True
        return False

    def api_rules(self, unit: _Unit, node: ast.AST, names: set[str], *, called: bool, how: str = "") -> None:
        """Flag forbidden attributes and calls among names (named or called), and dynamic tricks."""
        if not any(self.triggers.intersection(n.split(".")) for n in names):
            return
        for attr, reason in self.forbidden.attributes.items():
            if any(_matches(n, attr) for n in names):
                self.add(unit, node, attr, f"{how}`{attr.lstrip('.')}`", reason)
        for call, reason in self.forbidden.calls.items():
            if any(_matches(n, call) for n in names):
                verb = how or ("calling " if called else "")
                self.add(unit, node, call, f"{verb}`{call.lstrip('.')}`", reason)
        if self.forbidden.modules:
            self.dynamic_rules(unit, node, names)
        if unit.ipython:
            for n in names:
                if set(n.split(".")[1:]) & IPYTHON_READERS:
                    self.add(unit, node, "reader", f"`{n}`", READER_REASON)

    def dynamic_rules(self, unit: _Unit, node: ast.AST, names: set[str]) -> None:
        for n in sorted(names):
            parts = n.split(".")
            if _is_process(parts):
                self.add(unit, node, "dynamic", f"`{n}`", self.process_reason)
            elif ((n in DYNAMIC_BUILTINS and n not in self.local)
                  or (parts[0] == "builtins" and parts[-1] in DYNAMIC_BUILTINS)
                  or set(parts) & DYNAMIC_ATTRS or _is_sys_hook(parts)):
                self.add(unit, node, "dynamic", f"`{n}`", self.dynamic_reason)

    def check(self, unit: _Unit) -> None:
        called = {id(n.func) for n in unit.nodes if isinstance(n, ast.Call)}
        for node in unit.nodes:
            if not isinstance(node, _CHECKED):
                continue
            if isinstance(node, ast.Import):
                for a in node.names:
                    if not self.module_rule(unit, node, a.name):
                        self.api_rules(unit, node, {a.name}, called=False, how="importing ")
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                if not self.module_rule(unit, node, node.module):
                    full = {f"{node.module}.{a.name}" for a in node.names}
                    self.api_rules(unit, node, full, called=False, how="importing ")
            elif isinstance(node, ast.Call):
                self.api_rules(unit, node, self.names(node.func), called=True)
                if (module := _import_call(node)) is not None:
                    self.module_rule(unit, node, module)
            if id(node) not in called and _names_something(node):
                self.api_rules(unit, node, self.names(node), called=False)
            elif unit.ipython and isinstance(node, ast.Attribute) and node.attr in IPYTHON_READERS:
                self.add(unit, node, "reader", f"setting `{node.attr}`", READER_REASON)

    # code in strings and magics

    def expand(self, unit: _Unit) -> list[_Unit]:
        """Units for the code that literal strings and magics of this unit run."""
        out: list[_Unit] = []
        for node in unit.nodes:
            if isinstance(node, ast.Call) and id(node) not in self.expanded:
                found = self.expand_call(unit, node)
                if found is not None:
                    self.expanded.add(id(node))
                    out += [u for u in found if u is not None]
        return out

    def expand_call(self, unit: _Unit, node: ast.Call) -> list[_Unit | None] | None:
        names = self.names(node.func)
        for n in names:
            if n.startswith("get_ipython()."):
                return self.ipython_call(unit, node, n.partition(".")[2])
        if names & EXEC_CALLS:
            code = _arg(node, 0, "source")
            text = _literal_str(code) if code is not None else None
            return [self.nested(unit, node, text, ipython=False)] if text is not None else []
        return None

    def ipython_call(self, unit: _Unit, node: ast.Call, method: str) -> list[_Unit | None]:
        args = [_literal_str(a) for a in node.args]
        if method in IPYTHON_SHELL_CALLS:
            if self.forbidden.modules:
                cmd = args[0] if args and args[0] is not None else "..."
                self.add(unit, node, "shell", f"the shell command `!{cmd[:60]}`", self.process_reason)
            return []
        if method not in IPYTHON_CODE_CALLS:
            return []
        if not node.args or None in args:
            if self.forbidden.modules:
                self.add(unit, node, "dynamic", f"`get_ipython().{method}` with code built at run time",
                         self.dynamic_reason)
            return []
        if method in ("run_line_magic", "run_cell_magic", "magic"):
            if method == "magic":
                name, _, line = args[0].lstrip("%").partition(" ")
                args = [name, line]
            return self.magic(unit, node, args[0], args[1] if len(args) > 1 else "",
                              args[2] if method == "run_cell_magic" and len(args) > 2 else None)
        return [self.nested(unit, node, args[0], ipython=method in ("run_cell", "run_cell_async"))]

    def magic(self, unit: _Unit, node: ast.Call, name: str, line: str,
              body: str | None) -> list[_Unit | None]:
        """What one magic runs, and a violation where it runs what the grader cannot check."""
        name = name.lstrip("%")
        if name in PYTHON_MAGICS:
            return self.python_magic(unit, node, name, line, body)
        if name in WRITE_MAGICS or name in SCRIPT_MAGICS or (name == "script" and "python" in line):
            if name not in WRITE_MAGICS:
                self.shell_magic(unit, node, name, line)
            return [self.nested(unit, node, body, ipython=False, body=True)] if body else []
        if name in SHELL_MAGICS:
            self.shell_magic(unit, node, name, line)
        elif name in OPAQUE_MAGICS or (name == "config" and "autocall" in line.lower()):
            self.add(unit, node, f"magic:{name}", f"the magic `%{name}`",
                     "it runs or changes code in a way the grader cannot read; write the code in the cell")
        elif name in IMPORT_MAGICS:
            for module in line.replace(",", " ").split():
                if not module.startswith("-"):
                    self.module_rule(unit, node, module.lstrip("+"))
        elif name in HELP_MAGICS:
            return [self.nested(unit, node, line.lstrip("%"), ipython=False)]
        elif name not in QUIET_MAGICS:
            return self.unknown_magic(unit, node, name, line, body)
        return []

    def python_magic(self, unit: _Unit, node: ast.Call, name: str, line: str,
                     body: str | None) -> list[_Unit | None]:
        """%time and friends run their line (after options) and a %% cell's body as IPython code."""
        code = line if name == "time" else None
        if name in MAGIC_OPTIONS:
            code = _options(line, *MAGIC_OPTIONS[name])
        out = [self.nested(unit, node, body, ipython=True, body=True)] if body else []
        if code and (body is None or name == "timeit"):  # %%timeit's line is its setup code
            out.append(self.nested(unit, node, code, ipython=True))
        return out

    def shell_magic(self, unit: _Unit, node: ast.Call, name: str, line: str) -> None:
        if self.forbidden.modules:
            shown = f"%{name} {line}".strip()[:60]
            self.add(unit, node, "shell", f"the shell magic `{shown}`", self.process_reason)

    def unknown_magic(self, unit: _Unit, node: ast.Call, name: str, line: str,
                      body: str | None) -> list[_Unit | None]:
        if self.forbidden.modules:
            self.add(unit, node, f"magic:{name}", f"the magic `%{name}`",
                     "it is not one the grader knows, so it cannot tell what it runs; remove it")
            return []
        found = [self.nested(unit, node, line, ipython=True)] if line else []
        return found + ([self.nested(unit, node, body, ipython=True, body=True)] if body else [])


_CHECKED = (ast.Import, ast.ImportFrom, ast.Call, ast.Attribute, ast.Name, ast.Subscript)
_BINDERS = (ast.Assign, ast.AnnAssign, ast.NamedExpr, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
            ast.ClassDef, ast.Name, ast.arg)


def _assignments(node: ast.AST, local: set[str]) -> list[tuple[str, ast.AST]]:
    """(target, value) for the names and attributes a statement binds to an expression."""
    pairs: list[tuple[str, ast.AST]] = []
    if not isinstance(node, _BINDERS):
        return pairs
    if isinstance(node, ast.Assign):
        for target in node.targets:
            pairs += _pairs(target, node.value)
    elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
        pairs += _pairs(node.target, node.value)
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        positional = args.posonlyargs + args.args
        with_default = positional[len(positional) - len(args.defaults):]
        pairs += [(a.arg, d) for a, d in zip(with_default, args.defaults, strict=True)]
        pairs += [(a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        local.add(node.name)
    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        local.add(node.id)
    elif isinstance(node, ast.arg):
        local.add(node.arg)
    return pairs


def _pairs(target: ast.AST, value: ast.AST) -> list[tuple[str, ast.AST]]:
    if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
        if len(target.elts) == len(value.elts):
            return [p for t, v in zip(target.elts, value.elts, strict=True) for p in _pairs(t, v)]
        return []
    dotted = _dotted(target) if isinstance(target, (ast.Name, ast.Attribute)) else ""
    return [(dotted, value)] if dotted and not dotted.startswith(".") else []


def _names_something(node: ast.AST) -> bool:
    """Whether the node is read as a name: `a`, `a.b`, `getattr(a, "b")`, `a.__dict__["b"]`."""
    if isinstance(node, (ast.Attribute, ast.Name, ast.Subscript)):
        return isinstance(node.ctx, ast.Load)
    return _literal_attr(node) is not None


def _is_process(parts: list[str]) -> bool:
    """os.system, os.popen, os.exec*, os.spawn*, posix_spawn, asyncio.create_subprocess_*."""
    for i, part in enumerate(parts[1:], 1):
        if part.startswith(PROCESS_CALLS) and (parts[i - 1] in ("os", "posix", "nt")
                                               or part.startswith("create_subprocess")):
            return True
    return False


def _is_sys_hook(parts: list[str]) -> bool:
    return any(a == "sys" and b in SYS_HOOKS for a, b in zip(parts, parts[1:], strict=False))


def cells_of(source: str | Sequence[str]) -> tuple[Sequence[str], bool]:
    """(cells, is a notebook) for a module's source, a notebook's CellSource, or a list of cells."""
    if isinstance(source, str):
        cells = getattr(source, "cells", None)
        return (cells, True) if cells is not None else ((source,), False)
    return tuple(source), True


def find_violations(source: str | Sequence[str], forbidden: Forbidden) -> list[Violation]:
    """Every forbidden use in the code, in cell and line order (empty when the code is clean).

    `source` is a module's text, or a notebook's code cells (a sequence, or the Submission's
    source, which carries them); each cell is read as IPython reads it.
    """
    if not (forbidden.modules or forbidden.calls or forbidden.attributes):
        return []
    cells, notebook = cells_of(source)
    finder = _Finder(forbidden)
    units: list[_Unit] = []
    for index, text in enumerate(cells, 1):
        cell = index if notebook else None
        try:
            unit = finder.unit(text, cell, 0, ipython=notebook, depth=0)
        except UnreadableCode as exc:
            finder.found[(cell or 0, 0, "unreadable")] = Violation(0, "", "", cell, str(exc))
            continue
        if unit is not None:
            units.append(unit)
    _expand_all(finder, units)
    for unit in units:
        finder.check(unit)
    return finder.violations()


def _expand_all(finder: _Finder, units: list[_Unit]) -> None:
    """Add the units found in strings and magics, learning aliases as they appear."""
    for _ in range(MAX_NESTING + 1):
        finder.bind_all(units)
        new: list[_Unit] = []
        try:
            for unit in units:
                new += finder.expand(unit)
        except UnreadableCode as exc:  # the reading budget ran out
            finder.found[(exc.cell or 0, 0, "unreadable")] = Violation(0, "", "", exc.cell, str(exc))
            return
        if not new:
            return
        units += new

