"""A long job's progress on the command line (`yufu reconcile`): a bar redrawn in place on
a terminal, else a plain line per slice (a log keeps every line). A few lines of our own:
no progress library is a dependency, and this needs none."""

from __future__ import annotations

import sys
from typing import Any, TextIO

bar_chars = 30


class Progress:
    """Shown every answer of a job's steps (`ledger.jobs.run_steps`'s `seen`)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty()
        self.drawn = False

    def __call__(self, answer: dict[str, Any]) -> None:
        progress = answer.get("progress")
        if progress is None:
            return
        done, total = progress["done"], progress["total"]
        of = f"/{total:,}" if total is not None else " so far"
        what = f"{progress['kind']} {done:,}{of} ({progress['slices']} slices)"
        if not self.terminal:
            print(what, file=self.stream, flush=True)
            return
        if total is None:  # no bar without a total: the count alone
            self.stream.write(f"\r{what}")
        else:
            filled = bar_chars * done // total if total else bar_chars
            self.stream.write(f"\r[{'#' * filled}{'.' * (bar_chars - filled)}] {what}")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
