"""The guardrail stage: which guardrails run on a call, when, and what their verdicts do.

Which run: `default_on` ones, those the request names, and the chosen deployment's — merged
after routing, in the attempt itself, so no route or stream can skip them.  Each run is timed
and recorded on the call (`guardrail_information`); an error or a timeout blocks unless the
guardrail is `fail_open`.

A guardrail either checks texts (`apply_guardrail`) or is written as LiteLLM hook methods; then
only the methods of its configured modes run (`MODE_METHODS`): `async_pre_call_hook` before the
upstream call, `async_moderation_hook` during it, `async_post_call_success_hook` on a whole
answer, and on a stream its iterator and per-chunk hooks (or, if it has neither, its success
hook on the assembled answer at the stream's end).  What such a method raises blocks.  The
plain callbacks' `async_moderation_hook`s run here too, with the during-call guardrails, while
the upstream works on the call (`check_during`).
"""

from __future__ import annotations

import copy
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import trio

from gateway_trio.apis.slots import Slot, read, write
from gateway_trio.calls import Call
from gateway_trio.config import GuardrailConfig
from gateway_trio.errors import BadRequest, GatewayError, GuardrailBlocked, is_retryable
from gateway_trio.guardrails.base import CustomGuardrail, blocked
from gateway_trio.hooks import DualCache
from gateway_trio.hooks.inline import GUARDRAIL_METHODS, MODE_METHODS, bind, overrides, rejection
from gateway_trio.hooks.kwargs import hidden_params
from gateway_trio.hooks.views import ModelResponseStream, response_object, unwrap
from gateway_trio.runtime import turns
from gateway_trio.spend.records import GuardrailRun

if TYPE_CHECKING:
    from gateway_trio.apis.base import Assembler
    from gateway_trio.hooks.inline import HookSet

log = logging.getLogger(__name__)

STREAM_PARAMS = ("stream_mode", "sample_every", "buffer_max_chars")
STREAM_MODES = ("end", "buffer", "sample")
# The detail of a run cut off before its verdict (the client left, the deadline came, or a
# concurrent during-call check rejected the call first).
CANCELLED = "cancelled before its verdict"


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
    # Written as hook methods (no `apply_guardrail`): the methods it brings, per mode it has.
    hooked: dict[str, tuple[str, ...]] | None = field(default=None)

    def __post_init__(self) -> None:
        impl = self.impl
        if not impl.implements_apply and any(overrides(impl, m) for m in GUARDRAIL_METHODS):
            self.hooked = {mode: tuple(m for m in MODE_METHODS.get(mode, ()) if overrides(impl, m))
                           for mode in self.modes}

    def runs_in(self, mode: str, *, stream: bool = False) -> bool:
        """Whether it has something to run in `mode` (a stream's post_call takes any of the
        three post-call methods; a whole answer's only the success hook)."""
        if mode not in self.modes:
            return False
        if self.hooked is None:
            return True
        methods = self.hooked.get(mode, ())
        if mode == "post_call" and not stream:
            return "async_post_call_success_hook" in methods
        return bool(methods)

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
        self.cache = DualCache()  # the `cache` the pre-call hooks of guardrails get
        self.moderation: HookSet | None = None  # the plain callbacks with `async_moderation_hook`

    def __bool__(self) -> bool:
        return bool(self.by_name) or self.moderation is not None

    def attach(self, hooks: HookSet) -> None:
        """The gateway's hooks: their `async_moderation_hook`s run with the during-call guardrails."""
        self.moderation = hooks if hooks.moderators else None

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

    def active(self, call: Call, mode: str, *, stream: bool = False) -> list[Guardrail]:
        """The call's guardrails that have something to run in `mode`."""
        return [g for g in (self.by_name[n] for n in self.active_names(call)) if g.runs_in(mode, stream=stream)]

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
        """Guardrails that implement hook methods themselves: the HookSet runs their methods
        outside their modes (failure, response headers) on calls where they are active."""
        from gateway_trio.hooks.inline import IN_LINE

        return {g.name: g.impl for g in self.by_name.values() if any(overrides(g.impl, m) for m in IN_LINE)}

    def applied_names(self, call: Call) -> list[str]:
        """For `x-gateway-applied-guardrails`: what ran (not what declined to), and on a stream
        the post-call ones that will run on it before its end (the header leaves first): those
        whose `should_run_guardrail` says yes, or fails (a failed run is a run)."""
        names = [run.name for run in call.guardrail_runs if run.status != "not_run"]
        if call.stream:
            names += [g.name for g in self.active(call, "post_call", stream=True) if will_run(g, call, "post_call")]
        return list(dict.fromkeys(names))

    def checks_during(self, call: Call) -> bool:
        """Whether anything checks this call while the upstream works on it."""
        return (self.moderation is not None and not call.moderated) or bool(self.active(call, "during_call"))

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
        except trio.Cancelled:
            status, detail = "failed", CANCELLED
            raise
        finally:
            record(call, guardrail, mode, status, started, clock, detail)
        return result

    async def run_hook(self, call: Call, guardrail: Guardrail, mode: str, method: str, **arguments: Any) -> tuple[bool, Any]:
        """Run one hook method of a guardrail written as hook methods, in `mode`: (ran, result).

        `should_run_guardrail` decides first (its error, or a timeout, is a failed run that
        blocks unless `fail_open`); what the method raises blocks (`verdict`), and so does a
        pre-call hook's refusal text.
        """
        started, clock = time.time(), trio.current_time()
        status, detail = "success", None
        try:
            ran, result = await self._run_hook(call, guardrail, mode, method, arguments)
            if ran and method == "async_pre_call_hook" and isinstance(result, str):
                raise blocked(guardrail.name, result)  # LiteLLM's refusal text: a guardrail's block
            if not ran:
                status = "not_run"
            return ran, result
        except _FailedRun as failed:
            status, detail = "failed", failed.detail
            if guardrail.fail_open:
                return False, None
            raise failed.error from None
        except GatewayError as error:
            status, detail = "blocked", error.message
            raise
        except trio.Cancelled:
            status, detail = "failed", CANCELLED
            raise
        finally:
            record(call, guardrail, mode, status, started, clock, detail)

    async def _run_hook(self, call: Call, guardrail: Guardrail, mode: str, method: str,
                        arguments: dict[str, Any]) -> tuple[bool, Any]:
        impl = guardrail.impl
        if not should_run(guardrail, call, mode):
            return False, None
        try:
            async with turns.off_turn():
                with trio.fail_after(guardrail.timeout_s):
                    return True, await bind(impl, method, **arguments)()
        except trio.TooSlowError:
            raise _FailedRun(f"timed out after {guardrail.timeout_s:g} s",
                             blocked(guardrail.name, "the guardrail timed out (fail closed)")) from None
        except Exception as error:
            raise verdict(guardrail, error) from error

    async def check_body(self, call: Call, mode: str, body: Any, *, response: bool) -> Any:
        """Run `mode` guardrails over the request (or response); the body as they left it.

        Masking never writes into `body`: another task may hold it (the upstream call has the
        request, the deployment actor sent the reply).  The body returned is `body` itself if
        nothing was masked, else a new one sharing all it did not change (see `with_texts`).
        A guardrail written as hook methods gets the body itself, as LiteLLM hands it, and
        its method's result (a new request, a replacement answer) is what goes on.
        """
        slots = call.api.response_slots(body) if response else call.api.request_slots(body)
        texts = read(slots)
        for guardrail in self.active(call, mode):
            if not response and any(run.name == guardrail.name and run.mode == mode for run in call.guardrail_runs):
                continue  # already checked this request (an earlier attempt)
            if guardrail.hooked is None:
                texts = await self.run(call, guardrail, mode, texts, body if not response else call.body,
                                       "response" if response else "request")
                continue
            body = with_texts(body, slots, texts)  # what earlier guardrails masked, first
            body = await self._hooked_body(call, guardrail, mode, body)
            slots = call.api.response_slots(body) if response else call.api.request_slots(body)
            texts = read(slots)
        return with_texts(body, slots, texts)

    async def _hooked_body(self, call: Call, guardrail: Guardrail, mode: str, body: Any) -> Any:
        """One hook-method guardrail's verdict on the request or whole answer; the body after it."""
        user = call.user
        if mode == "pre_call":
            ran, result = await self.run_hook(call, guardrail, mode, "async_pre_call_hook", user_api_key_dict=user,
                                              cache=self.cache, data=body, call_type=call.call_type)
            return result if ran and isinstance(result, dict) else body
        if mode == "during_call":
            # The upstream has the request already: the hook gets a copy, and what it changes is dropped.
            await self.run_hook(call, guardrail, mode, "async_moderation_hook", data=private_copy(body),
                                user_api_key_dict=user, call_type=call.call_type)
            return body
        if mode == "post_call" and isinstance(body, dict):
            answer = response_object(body, hidden_params(call))
            ran, result = await self.run_hook(call, guardrail, mode, "async_post_call_success_hook", data=call.body,
                                              user_api_key_dict=user, response=answer)
            return unwrap(result) if ran and result is not None else unwrap(answer)
        return body

    async def check_during(self, call: Call) -> None:
        """What checks the call while the upstream works on it, all at once, as LiteLLM gathers
        them: the plain callbacks' `async_moderation_hook`s (once per call, not per attempt),
        each on its own copy of the request, and the during-call guardrails.  The first
        rejection cancels the other checks and raises; the caller cancels the upstream call.
        They check, they do not mask: the upstream has the request already."""
        checks: list[Callable[[], Awaitable[Any]]] = []
        if self.moderation is not None and not call.moderated:
            call.moderated = True
            moderation = self.moderation
            for hook in moderation.moderators:
                checks.append(functools.partial(self._moderate, moderation, hook, call))
        for guardrail in self.active(call, "during_call"):
            if not any(run.name == guardrail.name and run.mode == "during_call" for run in call.guardrail_runs):
                checks.append(functools.partial(self._check_during, call, guardrail))
        if len(checks) == 1:
            await checks[0]()
            return
        verdicts: list[GatewayError] = []
        async with trio.open_nursery() as nursery:
            for check in checks:
                nursery.start_soon(_first_verdict, check, verdicts, nursery.cancel_scope)
        if verdicts:
            raise verdicts[0]

    async def _moderate(self, moderation: HookSet, hook: Any, call: Call) -> None:
        try:
            await moderation.run_moderation(private_copy(call.body), call.user, call.call_type, hooks=[hook],
                                            trace=call.trace)
        except Exception as error:
            raise final(rejection(error)) from error

    async def _check_during(self, call: Call, guardrail: Guardrail) -> None:
        try:
            if guardrail.hooked is None:
                await self.run(call, guardrail, "during_call", read(call.api.request_slots(call.body)), call.body,
                               "request")
            else:
                await self._hooked_body(call, guardrail, "during_call", call.body)
        except GatewayError as error:
            last = final(error)
            if last is error:
                raise
            raise last from error

    # --- streams ----------------------------------------------------------------------

    def stream_guard(self, call: Call) -> StreamGuard | None:
        guardrails = self.active(call, "post_call", stream=True)
        return StreamGuard(self, call, guardrails) if guardrails else None


async def _first_verdict(check: Callable[[], Awaitable[Any]], verdicts: list[GatewayError],
                         scope: trio.CancelScope) -> None:
    """Run one of several concurrent checks; the first to reject cancels the others."""
    try:
        await check()
    except GatewayError as error:
        verdicts.append(error)
        scope.cancel()


class _FailedRun(Exception):
    """A guardrail's own machinery failed (not its verdict): blocks unless `fail_open`."""

    def __init__(self, detail: str, error: GatewayError) -> None:
        super().__init__(detail)
        self.detail = detail
        self.error = error


def _hooks_of(guardrail: Guardrail) -> tuple[str, ...]:
    return (guardrail.hooked or {}).get("post_call", ())


def should_run(guardrail: Guardrail, call: Call, mode: str) -> bool:
    """The guardrail's own `should_run_guardrail` for `mode`; its error is a failed run."""
    try:
        return bool(bind(guardrail.impl, "should_run_guardrail", data=call.body, event_type=mode)())
    except Exception as error:  # noqa: BLE001 - the operator's code may raise anything: a failed run
        detail = f"{type(error).__name__}: {error}"[:300]
        log.warning("guardrail %s failed: %s", guardrail.name, detail)
        raise _FailedRun(detail, blocked(guardrail.name, "the guardrail failed (fail closed)")) from None


def will_run(guardrail: Guardrail, call: Call, mode: str) -> bool:
    """Whether the guardrail's run in `mode` will be a run (`should_run` yes, or failing)."""
    try:
        return should_run(guardrail, call, mode)
    except _FailedRun:
        return True


def verdict(guardrail: Guardrail, error: Exception) -> GatewayError:
    """The client's error for what a guardrail's hook method raised: a GatewayError as it is,
    an HTTPException-style one with its `status_code`, anything else a guardrail block."""
    if isinstance(error, GatewayError):
        return final(error)
    if isinstance(getattr(error, "status_code", None), int):
        return rejection(error)
    return blocked(guardrail.name, str(error) or type(error).__name__)


def final(error: GatewayError) -> GatewayError:
    """A hook's verdict as the call's last word: one worded as an upstream's failure (a
    timeout, a 5xx) keeps its status and message, but is never retried nor counted against
    the deployment the call was on."""
    if not is_retryable(error):
        return error
    return GatewayError(error.message, status=error.status, code=error.code)


def record(call: Call, guardrail: Guardrail, mode: str, status: str, started: float, clock: float,
           detail: str | None) -> None:
    duration = 0.0 if status == "not_run" else (trio.current_time() - clock) * 1000
    call.guardrail_runs.append(GuardrailRun(guardrail.name, mode, status, started, duration, detail))  # type: ignore[arg-type]
    if call.trace is not None and status != "not_run":
        # Named and timed as the run was recorded; its detail stays out (it may quote the text checked).
        start_ns = int(started * 1e9)
        call.trace.child(f"guardrail {guardrail.name}", start_ns, start_ns + int(duration * 1e6),
                         {"gateway.guardrail.mode": mode, "gateway.guardrail.status": status},
                         None if status == "success" else status)


def private_copy(body: Any) -> Any:
    """A copy of a request for hooks that must not change the one under way (JSON data is
    copied fastest through orjson; anything else, such as an upload's bytes, by deepcopy)."""
    try:
        return orjson.loads(orjson.dumps(body))
    except TypeError:
        return copy.deepcopy(body)


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

    Guardrails written as hook methods see the chunks as objects: their iterator hooks wrap
    the stream (first configured innermost) and their per-chunk hooks see each chunk; one
    with only a success hook gets the assembled answer when the upstream is done.
    """

    def __init__(self, stage: GuardrailStage, call: Call, guardrails: list[Guardrail]) -> None:
        self.stage = stage
        self.call = call
        texts = [g for g in guardrails if g.hooked is None]
        hooked = [g for g in guardrails if g.hooked is not None]
        self.buffered = [g for g in texts if g.stream_mode == "buffer"]
        self.sampled = [g for g in texts if g.stream_mode == "sample"]
        self.at_end = [g for g in texts if g.stream_mode == "end"]
        self.wrapping = [g for g in hooked if set(_hooks_of(g)) - {"async_post_call_success_hook"}]
        self.assembled = [g for g in hooked if g not in self.wrapping]
        self.assembler: Assembler | None = call.api.assembler() if self.assembled else None
        self.error: GatewayError | None = None
        self.text: list[str] = []
        self.chunks_seen = 0
        self._held: list[tuple[dict[str, Any], list[Slot]]] = []
        self._held_chars = 0
        self._closing: list[bytes] = []
        self._released: list[str] = []  # the text passed on, as masked
        self._masked = False
        self._verdicts: set[int] = set()  # ids of the errors this guard's hooks raised

    async def filter(self, batches: AsyncIterator[list[bytes]]) -> AsyncIterator[list[bytes]]:
        try:
            if self.wrapping:
                batches = self._hooked(batches)
            async for batch in batches:
                out: list[bytes] = []
                for payload in batch:
                    chunk = orjson.loads(payload)
                    if self.assembler is not None:
                        self.assembler.add(payload)
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
            await self._check_assembled()
            tail.extend(self._remasked(self._closing) if self._masked else self._closing)
            if tail:
                yield tail
        except GatewayError as error:
            self.error = error
            self._held.clear()

    async def _hooked(self, batches: AsyncIterator[list[bytes]]) -> AsyncIterator[list[bytes]]:
        """The stream through the hook-method guardrails, as chunk objects and back."""
        hidden = hidden_params(self.call)

        async def chunk_objects() -> AsyncIterator[Any]:
            async for batch in batches:
                for payload in batch:
                    yield ModelResponseStream(orjson.loads(payload), hidden)

        chunks: AsyncIterator[Any] = chunk_objects()
        for guardrail in self.wrapping:
            chunks = self._wrapped(guardrail, chunks, hidden)
        async for chunk in chunks:
            if chunk is not None:
                yield [chunk if isinstance(chunk, bytes) else orjson.dumps(unwrap(chunk))]

    async def _wrapped(self, guardrail: Guardrail, chunks: AsyncIterator[Any], hidden: dict[str, Any]) -> AsyncIterator[Any]:
        """One guardrail's iterator and per-chunk hooks around `chunks`, its run recorded."""
        call, impl, methods = self.call, guardrail.impl, _hooks_of(guardrail)
        started, clock = time.time(), trio.current_time()
        status, detail = "success", None
        try:
            try:
                wanted = should_run(guardrail, call, "post_call")
            except _FailedRun as failed:
                status, detail = "failed", failed.detail
                if not guardrail.fail_open:
                    raise self._own(failed.error) from None
                wanted = False
            if not wanted:
                if status == "success":
                    status = "not_run"
                async for chunk in chunks:
                    yield chunk
                return
            source = chunks
            if "async_post_call_streaming_iterator_hook" in methods:
                source = bind(impl, "async_post_call_streaming_iterator_hook", user_api_key_dict=call.user,
                              response=chunks, request_data=call.body)()
            try:
                async for chunk in source:
                    if "async_post_call_streaming_hook" in methods:
                        if isinstance(chunk, dict):
                            chunk = ModelResponseStream(chunk, hidden)
                        with trio.fail_after(guardrail.timeout_s):
                            edited = await bind(impl, "async_post_call_streaming_hook", user_api_key_dict=call.user,
                                                response=chunk)()
                        chunk = chunk if edited is None else edited
                    yield chunk
            except trio.TooSlowError:
                status, detail = "failed", f"timed out after {guardrail.timeout_s:g} s"
                if not guardrail.fail_open:
                    raise self._own(blocked(guardrail.name, "the guardrail timed out (fail closed)")) from None
            except Exception as error:
                if id(error) in self._verdicts:
                    raise  # an inner guardrail's verdict, passing through this one's hook
                judged = self._own(verdict(guardrail, error))
                status, detail = "blocked", judged.message
                raise judged from error
        finally:
            record(call, guardrail, "post_call", status, started, clock, detail)

    def _own(self, error: GatewayError) -> GatewayError:
        self._verdicts.add(id(error))
        return error

    async def _check_assembled(self) -> None:
        """The success hooks of guardrails with no stream hooks, on the assembled answer."""
        if self.assembler is None:
            return
        answer = self.assembler.result(self.call.usage)
        if answer is None:
            return
        hidden = hidden_params(self.call)
        for guardrail in self.assembled:
            await self.stage.run_hook(self.call, guardrail, "post_call", "async_post_call_success_hook",
                                      data=self.call.body, user_api_key_dict=self.call.user,
                                      response=response_object(answer, hidden))

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
