"""Real workloads: snapshot live processes, record a program's faults and accesses, and
read the recordings back (``load``). See ``format`` (the file), ``schema`` (its sections)
and ``workload`` (the object ``load`` returns)."""
from .format import (CorruptRecording, NotARecording, RecordingError, TruncatedRecording,
                     UnsupportedVersion)
from .workload import File, Process, Vma, Workload, kpageflags_bits, load, pagemap_bits, pfn

__all__ = ["load", "snapshot", "record", "Workload", "Process", "Vma", "File", "pagemap_bits",
           "pfn", "kpageflags_bits", "RecordingError", "NotARecording", "TruncatedRecording",
           "CorruptRecording", "UnsupportedVersion"]


def snapshot(*args, **kwargs):
    """ppsize.recording.capture.snapshot (imported on first use)."""
    from .capture import snapshot as _snapshot
    return _snapshot(*args, **kwargs)


def record(*args, **kwargs):
    """ppsize.recording.recorder.record (imported on first use)."""
    from .recorder import record as _record
    return _record(*args, **kwargs)
