"""The progress bar of ``ppsize compare`` (stderr, a terminal only)."""
from __future__ import annotations

import sys
import threading
import time

__all__ = ["Progress", "NO_PROGRESS", "SharedProgress"]


class Progress:
    """A one-line progress bar on ``stream`` (default stderr), drawn only when
    ``enabled`` (default: the stream is a terminal), at most 10 times a second."""

    def __init__(self, enabled=None, stream=None, width=30):
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.width = width
        self._last = 0.0
        self._drawn = False

    def update(self, label, fraction=None, force=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        if fraction is None:
            bar = ""
        else:
            fraction = min(max(fraction, 0.0), 1.0)
            n = int(fraction * self.width)
            bar = f"[{'#' * n}{'.' * (self.width - n)}] {fraction * 100:3.0f}% "
        line = f"{bar}{label}"[:120]
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self._drawn = True

    def close(self):
        if self.enabled and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self._drawn = False


NO_PROGRESS = Progress(enabled=False)


class SharedProgress:
    """The bar of ``n`` runs in threads, run ``i`` reporting its share [i/n, (i+1)/n]
    (``slot(i)``): the bar shows the sum of what every run has done, one thread
    drawing at a time."""

    def __init__(self, progress, n):
        self.progress, self.n = progress, n
        self._done = [0.0] * n
        self._lock = threading.Lock()

    def slot(self, i):
        return _Slot(self, i)

    def close(self):
        self.progress.close()


class _Slot:
    def __init__(self, shared, i):
        self.shared, self.i = shared, i

    def update(self, label, fraction=None, force=False):
        sh = self.shared
        with sh._lock:
            if fraction is not None:
                sh._done[self.i] = min(max(fraction * sh.n - self.i, 0.0), 1.0)
                fraction = sum(sh._done) / sh.n
            sh.progress.update(label, fraction, force=force)

    def close(self):
        pass
