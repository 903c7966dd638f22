"""Inside the sandbox: the manifest's forbidden calls and attributes, replaced at run time.

Static checks read the source before it runs; this is the second line, installed in the
guest before the student's code loads, so an alias, a `getattr`, an `importlib` route or
a notebook magic reaches the same replacement. Each replacement records its use (sent
to the trusted side with the next answer, which fails the test on its own reading of
the manifest) and raises. The library's own code keeps working: a replaced function
called from a library module that names it (`nn.Conv2d.forward` calling `F.conv2d`)
runs the original.

This runs in the student's process, so it deters rather than prevents: a student who
builds code objects by hand or digs the original out of the interpreter's memory can
still reach it. Forbidden *modules* are stopped harder: they are not in the sandbox's
file system at all.
"""

from __future__ import annotations

import importlib
import os
import sys

TYPE_CHECKING = False  # typing itself costs start-up time in every job
if TYPE_CHECKING:
    from typing import Any

# Where a method-style rule (".relu") looks for functions of that name.
METHOD_HOMES = ("torch", "torch.Tensor", "torch.nn.functional", "torch.special", "torch.linalg")
_uses: list[str] = []


class ForbiddenCall(RuntimeError):
    """Raised in the student's code when it reaches an API the exercise forbids."""


def drain() -> list[str]:
    """The forbidden names used since the last drain, oldest first."""
    used = list(dict.fromkeys(_uses))
    _uses.clear()
    return used


def _library_prefixes() -> tuple[str, ...]:
    """The standard library and the package folders (never /job, /tmp or the guest)."""
    dirs = {os.path.dirname(os.__file__)}
    dirs.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    return tuple(sorted(d.rstrip("/") + "/" for d in dirs))


_LIBRARY = _library_prefixes()


def _called_by_library(frame: Any, name: str) -> bool:
    """Whether the caller is a library module's own code that names this API.

    The module must be a real entry of sys.modules whose file the code came from, and
    the code must mention the name: a generic helper in the library (an executor, vmap)
    that calls whatever it is handed does not count.
    """
    if frame is None:
        return False
    code = frame.f_code
    if not code.co_filename.startswith(_LIBRARY) or name not in code.co_names:
        return False
    module = sys.modules.get(frame.f_globals.get("__name__", ""))
    return (module is not None and getattr(module, "__dict__", None) is frame.f_globals
            and frame.f_globals.get("__file__") == code.co_filename)


def _refuse(rule: str, reason: str) -> None:
    _uses.append(rule)
    raise ForbiddenCall(f"{rule.lstrip('.')} is not allowed in this exercise: {reason}")


def _blocked_function(original: Any, rule: str, attr: str, reason: str) -> Any:
    def blocked(*args, **kwargs):
        if _called_by_library(sys._getframe(1), attr):
            return original(*args, **kwargs)
        _refuse(rule, reason)

    blocked.__name__ = blocked.__qualname__ = attr
    blocked._tg_blocked = True
    blocked.__doc__ = f"Not allowed in this exercise: {reason}"
    return blocked


def _blocked_class(original: type, rule: str, attr: str, reason: str) -> type:
    def __init__(self, *args, **kwargs):
        if _called_by_library(sys._getframe(1), attr):
            original.__init__(self, *args, **kwargs)
            return
        _refuse(rule, reason)

    return type(original.__name__, (original,), {
        "__init__": __init__, "__module__": original.__module__,
        "__qualname__": original.__qualname__, "__doc__": f"Not allowed here: {reason}",
        "_tg_blocked": True})


class _GuardedModule:
    """Stands for a forbidden submodule: the library reaches it, the student does not."""

    def __init__(self, module: Any, rule: str, attr: str, reason: str) -> None:
        object.__setattr__(self, "_tg_target", (module, rule, attr, reason))

    def __getattr__(self, name: str) -> Any:
        module, rule, attr, reason = object.__getattribute__(self, "_tg_target")
        if not _called_by_library(sys._getframe(1), attr):
            _refuse(rule, reason)
        return getattr(module, name)


def _resolve(dotted: str) -> tuple[Any, str] | None:
    """(the object that holds the last name, the last name), importing what it takes."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # not installed, or forbidden as a module: nothing to replace
            continue
        try:
            for name in parts[cut:-1]:
                owner = getattr(owner, name)
        except AttributeError:
            return None
        return (owner, parts[-1]) if hasattr(owner, parts[-1]) else None
    return None


def _replace(owner: Any, attr: str, rule: str, reason: str, *, attribute: bool) -> None:
    original = getattr(owner, attr)
    if getattr(original, "_tg_blocked", False):
        return  # one object under two rules (torch.conv2d is F.conv2d): replaced once
    if attribute and type(original).__name__ == "module":
        blocked: Any = _GuardedModule(original, rule, attr, reason)
    elif isinstance(original, type):
        blocked = _blocked_class(original, rule, attr, reason)
    elif callable(original):
        blocked = _blocked_function(original, rule, attr, reason)
    else:
        return
    try:
        setattr(owner, attr, blocked)
    except (AttributeError, TypeError):
        return  # a read-only slot of a builtin type: the static check is the line there
    # The same object under the same name elsewhere (torch.optim.sgd.SGD, torch.conv2d
    # bound in torch.nn.functional) is the same route in.
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict) and namespace.get(attr) is original:
            namespace[attr] = blocked


def _targets(rule: str, skip: set[str]) -> list[tuple[Any, str]]:
    if rule.startswith("."):
        found = []
        for home in METHOD_HOMES:
            if home.partition(".")[0] in skip or home.partition(".")[0] not in sys.modules:
                continue
            target = _resolve(f"{home}.{rule[1:]}")
            if target is not None:
                found.append(target)
        return found
    if rule.partition(".")[0] in skip:
        return []
    target = _resolve(rule)
    return [target] if target is not None else []


def install(calls: dict[str, str], attributes: dict[str, str], modules: dict[str, str]) -> None:
    """Replace every forbidden call and attribute before the student's code loads.

    Method-style rules (".relu") are replaced where the library defines them, once the
    library is imported; a library that is itself forbidden as a module is skipped (it is
    not there to import).
    """
    skip = set(modules)
    wanted = {rule.partition(".")[0] for rule in (*calls, *attributes) if not rule.startswith(".")}
    if any(rule.startswith(".") for rule in calls):
        wanted.add("torch")
    for top in sorted(wanted - skip):
        try:
            importlib.import_module(top)
        except Exception:
            pass
    for table, attribute in ((calls, False), (attributes, True)):
        for rule, reason in table.items():
            for owner, attr in _targets(rule, skip):
                _replace(owner, attr, rule, reason, attribute=attribute)
