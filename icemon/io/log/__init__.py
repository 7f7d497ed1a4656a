"""The ``icemon/1`` HDF5 log: layout (:mod:`~icemon.io.log.schema`), appending
(:mod:`~icemon.io.log.writer`), reading while it grows (:mod:`~icemon.io.log.reader`) and
taking over a log whose writer died (:mod:`~icemon.io.log.recovery`)."""

from icemon.io.log.reader import Log, open_log
from icemon.io.log.recovery import clear_write_mark, open_for_writing
from icemon.io.log.schema import (
    SCHEMA,
    STEP_FILL,
    UNKNOWN_STEP,
    LogError,
    check_schema,
    complete_frames,
    log_phases,
)
from icemon.io.log.writer import AlreadyLogged, LogWriter

__all__ = ["SCHEMA", "AlreadyLogged", "STEP_FILL", "UNKNOWN_STEP", "Log", "LogError", "LogWriter",
           "check_schema", "clear_write_mark", "complete_frames", "log_phases", "open_for_writing",
           "open_log"]
