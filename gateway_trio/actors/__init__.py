"""The actors: long-lived tasks that own state and are spoken to over bounded channels.

`router` owns model groups, cooldowns and load counters (choosing by `strategies`);
`deployment` is the deployment actor, one per deployment, owning its HTTP client and its
concurrency bound; `callbacks` takes logging events off the request path.  State has one
owner each, so nothing here needs a lock; the messages they exchange are in `channels/`.
"""
