"""The HTTP routes: thin adapters between Quart's requests and the gateway.

`llm` turns each LLM request into a `Call` for the pipeline and its `Answer` back into HTTP;
`admin` answers models, health and the metrics scrape (whose text `metrics` builds), `spend`
the spend logs, `guardrails` the guardrail admin routes; `errors` answers their refusals.  No
route calls a hook, guardrail or logger itself: that is the pipeline's job.
"""
