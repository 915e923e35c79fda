"""Spend: what each call cost and where the record of it is kept.

`records` defines the one record kept per request, `accounting` turns a finished call into
it, `costs` prices it from configured or built-in prices, `store` keeps records in SQLite,
and `writer` is the actor that batches them into the store off the request path.  One wing,
so that a question about spend has one place to look.
"""
