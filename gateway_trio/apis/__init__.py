"""The client APIs: what the gateway must know about each API its clients speak.

`parsing` reads and checks a request body into a `Call`; `wires` says how that API's answers
look on the wire (stream framing, stream end, error body); `assembly` rebuilds a whole answer
from its stream for logging hooks.  They sit below the pipeline, which is format-blind: a
`Call` carries its API's wire, so no stage branches on the route it came from.
"""
