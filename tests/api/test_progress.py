"""The command line's progress of a long job: a bar in place on a terminal, lines otherwise."""

from __future__ import annotations

import io

from api.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def answer(done: int, total: int, slices: int) -> dict[str, object]:
    return {"progress": {"kind": "statement_import", "done": done, "total": total,
                         "slices": slices}}


def test_on_a_terminal_the_bar_is_redrawn_in_place() -> None:
    stream = Terminal()
    progress = Progress(stream)
    progress(answer(0, 200, 0))
    progress(answer(100, 200, 1))
    progress({"duplicate": False})  # the last answer, with no job: nothing drawn
    progress.close()
    assert stream.getvalue() == (
        "\r[..............................] statement_import 0/200 (0 slices)"
        "\r[###############...............] statement_import 100/200 (1 slices)\n")


def test_elsewhere_a_line_per_slice() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    progress(answer(100, 200, 1))
    progress(answer(200, 200, 2))
    progress({"progress": {"kind": "release_run", "done": 50, "total": None, "slices": 1}})
    progress.close()
    assert stream.getvalue().splitlines() == ["statement_import 100/200 (1 slices)",
                                              "statement_import 200/200 (2 slices)",
                                              "release_run 50 so far (1 slices)"]
