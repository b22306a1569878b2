"""One progress bar for every command: on stderr, only on a terminal, finishing at 100 %.

:class:`ProgressBar` implements the ``ProgressSink`` protocol of the engines
(``start(description, total)``, ``advance(amount)``) and ``update(done, total)``
for callbacks that report absolute counts.  When stderr is not a terminal
(a pipe, a file, CI) or ``enabled`` is false it draws nothing at all.  Every
task is completed to its total when the next one starts and when the bar
closes without an error, so a finished run never shows 97 %.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any


class ProgressBar:
    def __init__(self, *, enabled: bool = True, console: Any = None) -> None:
        from rich.console import Console

        self._console = console if console is not None else Console(stderr=True)
        self.enabled = enabled and self._console.is_terminal
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console,
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is None:
            return
        if kind is None:
            self._finish_current()
        self._progress.stop()

    def _finish_current(self) -> None:
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[-1]
        if task.total is None:
            self._progress.update(
                self._task, total=task.completed or 1, completed=task.completed or 1
            )
        else:
            self._progress.update(self._task, completed=task.total)

    def start(self, description: str, total: float | None) -> None:
        if self._progress is None:
            return
        self._finish_current()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: float = 1.0) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def update(self, done: float, total: float | None = None) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total)
