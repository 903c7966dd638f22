"""Inside the notebook's kernel: answers requests from the notebook's own namespace."""

from __future__ import annotations

from grader.guest.dispatch import Dispatcher, install_import_blocker
from grader.guest.forbid import drain as drain_forbidden
from grader.guest.forbid import install as install_forbidden
from grader.guest.wire import PREFIX

TYPE_CHECKING = False  # typing itself costs start-up time in every job
if TYPE_CHECKING:
    from typing import Any

_dispatcher: Dispatcher | None = None


class _UserNamespace:
    """Attribute access onto the kernel's user namespace (what the cells defined)."""

    def __init__(self, ns: dict[str, Any]) -> None:
        self._ns = ns

    def __getattr__(self, name: str) -> Any:
        try:
            return self._ns[name]
        except KeyError:
            raise AttributeError(name) from None


class _NotebookDispatcher(Dispatcher):
    def names(self) -> list[str]:
        return [n for n, v in self.root._ns.items()
                if not n.startswith("_") and n not in ("In", "Out", "exit", "quit", "get_ipython")]


def setup(forbidden_modules: dict[str, str], max_blob_bytes: int,
          forbidden_calls: dict[str, str] | None = None,
          forbidden_attributes: dict[str, str] | None = None) -> None:
    """Install the import blocker, the run-time bans and a dispatcher over the user namespace."""
    global _dispatcher
    install_import_blocker(forbidden_modules)
    install_forbidden(forbidden_calls or {}, forbidden_attributes or {}, forbidden_modules)
    ns = get_ipython().user_ns  # noqa: F821 - provided by IPython in the kernel
    _dispatcher = _NotebookDispatcher(_UserNamespace(ns), max_blob_bytes)


def names(resp_path: str) -> None:
    """Write the notebook's public names and the forbidden APIs its cells reached, as JSON."""
    import json

    with open(resp_path, "w") as f:
        json.dump({"names": sorted(_dispatcher.names()), "forbidden": drain_forbidden()}, f)


def serve(req_path: str, resp_path: str) -> None:
    """Answer the request in req_path into resp_path."""
    with open(req_path, "rb") as f:
        data = f.read()
    header_len, _ = PREFIX.unpack(data[:PREFIX.size])
    header = data[PREFIX.size:PREFIX.size + header_len]
    blob = data[PREFIX.size + header_len:]
    answer = _dispatcher.answer((header, blob), "/tmp/ipykernel_")
    with open(resp_path, "wb") as f:
        f.write(answer)
