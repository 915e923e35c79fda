"""The guardrail stage: which guardrails run on a call, when, and what their verdicts do.

Which run: `default_on` ones, those the request names, and the chosen deployment's — merged
after routing, in the attempt itself, so no route or stream can skip them.  Each run is timed
and recorded on the call (`guardrail_information`); an error or a timeout blocks unless the
guardrail is `fail_open`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

import orjson
import trio

from gateway_trio.apis.slots import Slot, read, write
from gateway_trio.calls import Call
from gateway_trio.config import GuardrailConfig
from gateway_trio.errors import BadRequest, GatewayError, GuardrailBlocked
from gateway_trio.guardrails.base import CustomGuardrail, blocked
from gateway_trio.hooks.inline import bind
from gateway_trio.runtime import turns
from gateway_trio.spend.records import GuardrailRun

log = logging.getLogger(__name__)

STREAM_PARAMS = ("stream_mode", "sample_every", "buffer_max_chars")
STREAM_MODES = ("end", "buffer", "sample")


@dataclass(slots=True)
class Guardrail:
    """One configured guardrail and how the stage runs it."""

    name: str
    impl: CustomGuardrail
    modes: tuple[str, ...]
    default_on: bool
    fail_open: bool
    timeout_s: float
    builtin: bool
    stream_mode: str = "end"
    sample_every: int = 10
    buffer_max_chars: int = 2048

    def describe(self) -> dict[str, Any]:
        """For /guardrails/list: no params, so no secrets."""
        return {
            "guardrail_name": self.name,
            "mode": list(self.modes),
            "default_on": self.default_on,
            "type": "builtin" if self.builtin else "custom",
            "fail_open": self.fail_open,
            "stream_mode": self.stream_mode,
        }


def configure(config: GuardrailConfig) -> Guardrail:
    from gateway_trio.guardrails.builtin import BUILTINS, build_guardrail

    params = dict(config.params)
    stream = {k: params.pop(k) for k in STREAM_PARAMS if k in params}
    modes = (config.mode,) if isinstance(config.mode, str) else tuple(config.mode)
    impl = build_guardrail(config.name, config.guardrail, list(modes), config.default_on, params)
    default_stream = getattr(impl, "default_stream_mode", "end")
    guardrail = Guardrail(
        config.name, impl, modes, config.default_on, config.fail_open, config.timeout_s,
        builtin=config.guardrail in BUILTINS,
        stream_mode=str(stream.get("stream_mode", default_stream)),
        sample_every=int(stream.get("sample_every", 10)),
        buffer_max_chars=int(stream.get("buffer_max_chars", 2048)),
    )
    if guardrail.stream_mode not in STREAM_MODES:
        from gateway_trio.config import ConfigError

        raise ConfigError(f"guardrail {config.name!r}: params.stream_mode must be one of {', '.join(STREAM_MODES)}")
    return guardrail


class GuardrailStage:
    def __init__(self, guardrails: list[Guardrail]) -> None:
        self.by_name = {g.name: g for g in guardrails}
        self.default_on = [g.name for g in guardrails if g.default_on]

    def __bool__(self) -> bool:
        return bool(self.by_name)

    async def aclose(self) -> None:
        """Close the HTTP clients of guardrails that call services (moderation, http)."""
        for guardrail in self.by_name.values():
            close = getattr(guardrail.impl, "aclose", None)
            if close is not None:
                await close()

    # --- which run ----------------------------------------------------------------------

    def check_requested(self, call: Call) -> None:
        unknown = [n for n in call.requested_guardrails if n not in self.by_name]
        if unknown:
            raise BadRequest(f"unknown guardrail(s): {', '.join(unknown)}", param="guardrails")

    def active(self, call: Call, mode: str) -> list[Guardrail]:
        return [self.by_name[n] for n in self.active_names(call) if mode in self.by_name[n].modes]

    def active_names(self, call: Call) -> list[str]:
        """default_on, then the request's, then the chosen deployment's (once routed)."""
        names = list(self.default_on)
        for name in call.requested_guardrails:
            if name not in names:
                names.append(name)
        if call.deployment is not None:
            for name in call.deployment.guardrails:
                if name not in names:
                    names.append(name)
        return [n for n in names if n in self.by_name]

    def hook_implementers(self) -> dict[str, CustomGuardrail]:
        """Guardrails that implement hook methods themselves (run through the HookSet)."""
        from gateway_trio.hooks.inline import IN_LINE, overrides

        return {g.name: g.impl for g in self.by_name.values() if any(overrides(g.impl, m) for m in IN_LINE)}

    def applied_names(self, call: Call) -> list[str]:
        """For `x-gateway-applied-guardrails`: what ran, and post-call ones a stream will run."""
        names = [run.name for run in call.guardrail_runs]
        if call.stream:
            names += [g.name for g in self.active(call, "post_call")]
        return list(dict.fromkeys(names))

    # --- running one -------------------------------------------------------------------------

    async def run(self, call: Call, guardrail: Guardrail, mode: str, texts: list[str], data: Any,
                  input_type: str) -> list[str]:
        """Apply one guardrail to `texts`; the (possibly masked) texts, or GuardrailBlocked.

        Everything the guardrail's own code does counts, `should_run_guardrail` too: an error
        or a timeout in any of it is a failed run, which blocks unless `fail_open`.
        """
        impl = guardrail.impl
        request = data if isinstance(data, dict) else {}
        started, clock = time.time(), trio.current_time()
        status, detail, result = "success", None, texts
        try:
            if not bind(impl, "should_run_guardrail", data=request, event_type=mode)():
                status = "not_run"
                return texts
            async with turns.off_turn():  # user code, which may call out (moderation, http)
                with trio.fail_after(guardrail.timeout_s):
                    checked = await bind(
                        impl, "apply_guardrail", inputs={"texts": list(texts)}, request_data=request, input_type=input_type
                    )()
            if isinstance(checked, dict) and isinstance(checked.get("texts"), list) and len(checked["texts"]) == len(texts):
                result = [str(t) for t in checked["texts"]]
        except GuardrailBlocked as error:
            status, detail = "blocked", error.message
            raise
        except trio.TooSlowError:
            status, detail = "failed", f"timed out after {guardrail.timeout_s:g} s"
            if not guardrail.fail_open:
                raise blocked(guardrail.name, "the guardrail timed out (fail closed)") from None
        except Exception as error:
            status, detail = "failed", f"{type(error).__name__}: {error}"[:300]
            log.warning("guardrail %s failed: %s", guardrail.name, detail)
            if not guardrail.fail_open:
                raise blocked(guardrail.name, "the guardrail failed (fail closed)") from None
        finally:
            duration = 0.0 if status == "not_run" else (trio.current_time() - clock) * 1000
            call.guardrail_runs.append(GuardrailRun(guardrail.name, mode, status, started, duration, detail))  # type: ignore[arg-type]
        return result

    async def check_body(self, call: Call, mode: str, body: Any, *, response: bool) -> Any:
        """Run `mode` guardrails over the request (or response) texts; the body as they left it.

        Masking never writes into `body`: another task may hold it (the upstream call has the
        request, the deployment actor sent the reply).  The body returned is `body` itself if
        nothing was masked, else a new one sharing all it did not change (see `with_texts`).
        """
        slots = call.api.response_slots(body) if response else call.api.request_slots(body)
        texts = read(slots)
        for guardrail in self.active(call, mode):
            if not response and any(run.name == guardrail.name and run.mode == mode for run in call.guardrail_runs):
                continue  # already checked this request (an earlier attempt)
            texts = await self.run(call, guardrail, mode, texts, body if not response else call.body,
                                   "response" if response else "request")
        return with_texts(body, slots, texts)

    # --- streams ----------------------------------------------------------------------

    def stream_guard(self, call: Call) -> StreamGuard | None:
        guardrails = self.active(call, "post_call")
        return StreamGuard(self, call, guardrails) if guardrails else None


def with_texts(body: Any, slots: list[Slot], texts: list[str]) -> Any:
    """`body` with `texts` in its `slots`, copy-on-write: the containers holding a changed text,
    and those on the way to them, are copied; everything else is shared, nothing is written.

    Costs nothing when no text changed (the usual case); a masked body costs one walk of it.
    """
    changes: dict[int, dict[Any, str]] = {}
    for (container, key), text in zip(slots, texts):
        if container[key] != text:
            changes.setdefault(id(container), {})[key] = text
    return _copied(body, changes) if changes else body


def _copied(node: Any, changes: dict[int, dict[Any, str]]) -> Any:
    """`node`, or a copy of it if it or a container inside it holds a changed text."""
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return node
    copy: Any = None
    for key, value in items:
        new = _copied(value, changes)
        if new is not value:
            if copy is None:
                copy = dict(node) if isinstance(node, dict) else list(node)
            copy[key] = new
    own = changes.get(id(node))
    if own:
        if copy is None:
            copy = dict(node) if isinstance(node, dict) else list(node)
        for key, text in own.items():
            copy[key] = text
    return node if copy is None else copy


class StreamGuard:
    """Post-call guardrails on a stream, each in its mode: end, buffer or sample.

    `buffer` holds chunks until their text is checked, so blocked text never leaves; held text
    is bounded by `buffer_max_chars`; if it was masked, the closing events that repeat the whole
    text (the Responses API's) carry the masked text too.  `sample` checks the text so far
    every `sample_every` chunks; `end` checks the whole text when the upstream is done.  A block sets `error` and
    stops the stream; the pipeline ends it with an error event instead of the normal tail.
    """

    def __init__(self, stage: GuardrailStage, call: Call, guardrails: list[Guardrail]) -> None:
        self.stage = stage
        self.call = call
        self.buffered = [g for g in guardrails if g.stream_mode == "buffer"]
        self.sampled = [g for g in guardrails if g.stream_mode == "sample"]
        self.at_end = [g for g in guardrails if g.stream_mode == "end"]
        self.error: GatewayError | None = None
        self.text: list[str] = []
        self.chunks_seen = 0
        self._held: list[tuple[dict[str, Any], list[Slot]]] = []
        self._held_chars = 0
        self._closing: list[bytes] = []
        self._released: list[str] = []  # the text passed on, as masked
        self._masked = False

    async def filter(self, batches: AsyncIterator[list[bytes]]) -> AsyncIterator[list[bytes]]:
        try:
            async for batch in batches:
                out: list[bytes] = []
                for payload in batch:
                    chunk = orjson.loads(payload)
                    if self.call.api.is_closing_event(chunk):
                        self._closing.append(payload)  # held until the end-of-stream checks pass
                        continue
                    slots = self.call.api.chunk_slots(chunk)
                    piece = "".join(read(slots))
                    self.text.append(piece)
                    self.chunks_seen += 1
                    if self.buffered:
                        self._held.append((chunk, slots))
                        self._held_chars += len(piece)
                        if self._held_chars >= max(g.buffer_max_chars for g in self.buffered):
                            out.extend(await self._release())
                    else:
                        out.append(payload)
                    if self.sampled and self.chunks_seen % min(g.sample_every for g in self.sampled) == 0:
                        await self._check(self.sampled, "".join(self.text))
                if out:
                    yield out
            tail = await self._release() if self._held else []
            await self._check(self.sampled + self.at_end, "".join(self.text))
            tail.extend(self._remasked(self._closing) if self._masked else self._closing)
            if tail:
                yield tail
        except GuardrailBlocked as error:
            self.error = error
            self._held.clear()

    async def _release(self) -> list[bytes]:
        """Check the held chunks' text; pass them on (masked if a guardrail masked)."""
        held_text = [("".join(read(slots))) for _, slots in self._held]
        texts = ["".join(held_text)]
        for guardrail in self.buffered:
            texts = await self.stage.run(self.call, guardrail, "post_call", texts, self.call.body, "response")
        if texts[0] != "".join(held_text):
            self._rewrite_held(texts[0])
            self._masked = True
        self._released.append(texts[0])
        out = [orjson.dumps(chunk) for chunk, _ in self._held]
        self._held.clear()
        self._held_chars = 0
        return out

    def _rewrite_held(self, masked: str) -> None:
        """Put the masked text in the first held text slot and empty the others."""
        first = True
        for _, slots in self._held:
            for container, key in slots:
                container[key] = masked if first else ""
                first = False

    def _remasked(self, closing: list[bytes]) -> list[bytes]:
        """Closing events that repeat the whole text, with the masked text in its place."""
        masked = "".join(self._released)
        out = []
        for payload in closing:
            event = orjson.loads(payload)
            slots = self.call.api.closing_slots(event)
            if slots:
                write(slots, [masked] + [""] * (len(slots) - 1))
                payload = orjson.dumps(event)
            out.append(payload)
        return out

    async def _check(self, guardrails: list[Guardrail], text: str) -> None:
        for guardrail in guardrails:
            await self.stage.run(self.call, guardrail, "post_call", [text], self.call.body, "response")
