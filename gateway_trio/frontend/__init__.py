"""The frontend: where HTTP comes in, and the only wing that knows hypercorn and Quart-Trio.

The Quart-Trio app (`app`) mounts the routes and starts the gateway's actors in its nursery;
`handler` runs each request in the task hypercorn started for it, `intake` reads a body whole
within its limits, `serving` runs the app under hypercorn with our limits and graceful
shutdown, `workers` runs several processes of it, `asgi` builds it for other ASGI servers.
It sits at the top of the house: everything below serves a `Call` without knowing HTTP
servers exist, so the pipeline can be tested without a socket.
"""
