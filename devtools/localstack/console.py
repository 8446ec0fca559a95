"""What the local stack prints: a progress bar, a summary table per brand, alerts and request lines."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


def duration(seconds: float | None) -> str:
    """1h 02m, 4m 05s, 12s; "-" when there is nothing to show."""
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400}d {seconds % 86400 // 3600:02d}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


SUMMARY_COLUMNS = ("brand", "mentions", "responded", "p50 first", "p90 first", "compliance", "at risk", "breached")


def summary_rows(summaries: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for brand, summary in summaries.items():
        first = summary.get("first_response_seconds") or {}
        sla = summary.get("sla") or {}
        rows.append(
            (
                brand,
                str(summary.get("mentions", 0)),
                str(summary.get("responded", 0)),
                duration(first.get("p50")),
                duration(first.get("p90")),
                percent(sla.get("compliance")),
                str(sla.get("at_risk", 0)),
                str(sla.get("breached", 0)),
            )
        )
    return rows


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(column), *(len(row[i]) for row in rows)) if rows else len(column) for i, column in enumerate(columns)
    ]

    def line(cells: Sequence[str]) -> str:
        # The first column (names) is left-aligned, numbers right-aligned.
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(columns), line(["-" * width for width in widths]), *(line(row) for row in rows)])


class Console:
    """Thread-safe printing with one progress line that other lines do not garble."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._progress = ""
        self._interactive = self.stream.isatty()
        self._last_plain_progress = 0.0

    def print(self, text: str = "") -> None:
        with self._lock:
            self._clear()
            print(text, file=self.stream, flush=True)
            self._redraw()

    def progress(self, text: str) -> None:
        """Show (or replace) the progress line; without a terminal, a line every few seconds."""
        with self._lock:
            if self._interactive:
                self._clear()
                self._progress = text
                self._redraw()
            elif time.monotonic() - self._last_plain_progress >= 5:
                self._last_plain_progress = time.monotonic()
                print(text, file=self.stream, flush=True)

    def end_progress(self, text: str | None = None) -> None:
        with self._lock:
            self._clear()
            self._progress = ""
            if text:
                print(text, file=self.stream, flush=True)

    def _clear(self) -> None:
        if self._interactive and self._progress:
            self.stream.write("\r\033[K")

    def _redraw(self) -> None:
        if self._interactive and self._progress:
            self.stream.write(self._progress)
            self.stream.flush()


def bar(done: int, total: int, width: int = 30) -> str:
    fraction = 0.0 if total <= 0 else min(1.0, done / total)
    filled = int(round(fraction * width))
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:3.0f}%"
