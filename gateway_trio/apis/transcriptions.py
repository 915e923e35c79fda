"""The audio Transcriptions API (`/v1/audio/transcriptions`): a multipart upload in, text out.

Its body is a form, not JSON: the file goes upstream with its fields (as the adapter's
`Upload`); its answer may be plain text, which the gateway passes on as it came.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway_trio.adapters.base import Upload
from gateway_trio.apis.base import Api, Form
from gateway_trio.apis.checks import check_model, refuse_upstream_fields
from gateway_trio.apis.options import form_values, take_options
from gateway_trio.apis.slots import Slot
from gateway_trio.calls import Call
from gateway_trio.errors import BadRequest


class TranscriptionsApi(Api):
    def parse(self, content: Form) -> Call:
        refuse_upstream_fields(content.fields)
        if content.upload is None:
            raise BadRequest("'file' is required: send the audio as a multipart file field", param="file")
        model = check_model(content.fields.get("model"))
        call = Call(self, model, {**form_values(content.fields), "file": content.upload})
        take_options(call)  # LiteLLM's fields, as in a JSON body (read from strings)
        return call

    def upstream_body(self, call: Call) -> Any:
        upload = call.body.get("file")
        if isinstance(upload, Upload):  # a new one: the upload in the body is not written into
            return dataclasses.replace(upload, fields={k: str(v) for k, v in call.body.items() if k != "file"})
        return call.body

    def response_slots(self, body: Any) -> list[Slot]:
        return [(body, "text")] if isinstance(body, dict) and isinstance(body.get("text"), str) else []


TRANSCRIPTIONS = TranscriptionsApi(
    "transcriptions", "audio_transcription", ("/v1/audio/transcriptions", "/audio/transcriptions"),
    adapter_method="transcription", body="multipart", streams=False,
)
