"""Logging that never blocks the event loop: records are queued and a thread writes them.

A log line is written to stderr, a pipe a slow reader (a container runtime, a terminal held by
Ctrl-S) can fill; a write then blocks, and on the loop's thread that stops every call.  So the
loop's side only puts the record on a bounded queue; one listener thread formats nothing heavier
than a line and writes it.  When the queue is full the line is dropped and counted, as the
gateway does with every other bounded queue.

`fields` in a record's `extra` are structured data: the JSON format gives them as keys of the
line's object, the text format as `name=value` after the message.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUEUE_LINES = 10_000


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The classic line, with the record's fields as `name=value` after the message."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        fields = getattr(record, "fields", None)
        if not fields:
            return text
        return text + " " + " ".join(f"{name}={_text_value(value)}" for name, value in fields.items())


class DroppingQueueHandler(logging.handlers.QueueHandler):
    """A QueueHandler that drops (and counts) a line when its bounded queue is full."""

    def __init__(self, lines: queue.Queue) -> None:
        super().__init__(lines)
        self.dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Merge the arguments now (they may change after this call) and keep the traceback as
        # text, without formatting the line: the listener's formatter does that, in its thread.
        copy = logging.makeLogRecord(record.__dict__)
        copy.msg = record.getMessage()
        copy.args = None
        if record.exc_info:
            copy.exc_text = logging.Formatter().formatException(record.exc_info)
        copy.exc_info = None
        return copy

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


_listener: logging.handlers.QueueListener | None = None
_handler: DroppingQueueHandler | None = None


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """Send the whole process's logging through the queue to stderr, in `log_format`.

    Called again (once the config says which format), it replaces what it set up before.
    """
    global _listener, _handler
    stop_logging()
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    lines: queue.Queue = queue.Queue(QUEUE_LINES)
    _handler = DroppingQueueHandler(lines)
    _listener = logging.handlers.QueueListener(lines, writer, respect_handler_level=False)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_handler)
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream call is noise
    _listener.start()


def stop_logging() -> None:
    """Write what is queued and stop the listener thread (at exit, or before reconfiguring)."""
    global _listener
    if _listener is not None:
        listener, _listener = _listener, None
        listener.stop()


def dropped_lines() -> int:
    """Lines dropped because the queue to stderr was full, since logging was configured."""
    return 0 if _handler is None else _handler.dropped


def _text_value(value: Any) -> str:
    text = str(value)
    return orjson.dumps(text).decode() if (" " in text or not text) else text


atexit.register(stop_logging)

__all__ = ["JsonFormatter", "LogFormat", "TextFormatter", "configure_logging", "dropped_lines", "stop_logging"]
