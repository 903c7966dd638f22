"""Resource limits for one sandboxed job, as an assignment's manifest sets them."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Limits:
    """What one submission may use; every field has a default a course can override."""

    memory_mb: int = 2048
    processes: int = 64
    cpus: float = 1.0
    tmp_mb: int = 64
    file_size_mb: int = 64
    load_timeout_s: float = 60.0
    call_timeout_s: float = 20.0
    total_timeout_s: float = 300.0
    output_kb: int = 64
    return_mb: int = 64

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        """Build from a manifest table, refusing unknown keys and non-positive values."""
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown limit(s) {', '.join(unknown)}; known: {', '.join(known)}")
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"limit {key} must be a positive number, got {value!r}")
        return cls(**data)
