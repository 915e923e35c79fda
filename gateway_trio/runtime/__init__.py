"""trio machinery with no business logic: what every actor and stage runs on.

`turns` hands out the event loop's CPU a stretch at a time, so bursts of calls spread out;
`handoff` sends on a channel without a needless yield; `supervision` restarts a crashing actor
with backoff; `stalls` names who held the event loop; `tracing` hands OpenTelemetry spans to an
export thread through a bounded queue.  Nothing here knows what a call or a
deployment is, which is why it sits at the bottom of the house and anything may use it.
"""
