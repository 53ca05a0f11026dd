"""Release: specifications, QC samples and results, processing sessions and QA's decision."""

from __future__ import annotations

__all__: list[str] = []
