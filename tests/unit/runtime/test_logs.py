"""The log formats and the queue that keeps stderr writes off the event loop."""

import logging
import queue

import orjson

from gateway_trio.runtime.logs import DroppingQueueHandler, JsonFormatter, TextFormatter


def record(message: str = "answered %s", *args, fields=None, exc_info=None) -> logging.LogRecord:
    made = logging.LogRecord("gateway_trio.access", logging.INFO, __file__, 1, message, args or ("chat",), exc_info)
    if fields is not None:
        made.fields = fields
    return made


def test_json_lines_carry_the_message_and_the_fields_as_keys():
    line = orjson.loads(JsonFormatter().format(record(fields={"call_id": "c1", "cost": 0.5, "ttft_ms": None})))
    assert line["message"] == "answered chat"
    assert line["logger"] == "gateway_trio.access"
    assert line["level"] == "INFO"
    assert (line["call_id"], line["cost"], line["ttft_ms"]) == ("c1", 0.5, None)
    assert line["time"].endswith("Z")


def test_json_lines_keep_a_traceback_as_one_field():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        line = orjson.loads(JsonFormatter().format(record(exc_info=sys.exc_info())))
    assert "ValueError: boom" in line["exception"]


def test_text_lines_end_with_the_fields_as_name_value():
    text = TextFormatter().format(record(fields={"call_id": "c1", "error": "two words"}))
    assert text.endswith('answered chat call_id=c1 error="two words"')


def test_a_full_queue_drops_and_counts_instead_of_blocking():
    handler = DroppingQueueHandler(queue.Queue(1))
    handler.handle(record())
    handler.handle(record())  # nobody drains the queue: this one is dropped, not waited for
    assert handler.dropped == 1


def test_the_queued_copy_has_its_arguments_merged_and_its_traceback_as_text():
    handler = DroppingQueueHandler(queue.Queue(2))
    try:
        raise KeyError("k")
    except KeyError:
        import sys

        handler.handle(record("a %s", "b", exc_info=sys.exc_info()))
    queued = handler.queue.get_nowait()
    assert (queued.msg, queued.args, queued.exc_info) == ("a b", None, None)
    assert "KeyError" in queued.exc_text
