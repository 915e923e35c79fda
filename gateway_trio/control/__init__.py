"""The control plane (SPEC §9): keys, teams, users and end-users, their budgets and limits.

The master key alone cannot tell one app or person from another, so every caller gets a
virtual key of its own.  `records` holds the stored objects; `schema` versions the database
and `database` opens it migrated; `store` keeps the records (`reconcile` the config-owned
ones); `admin` is what the admin routes do, over `requests` and `queries` (what they accept)
and `views` (what they answer).  At run time `plane` joins the key cache (`keycache`), the
`ledger` of budgets, sliding `windows` and reservations, and `admission`, which decides each
call in one place, in SPEC §9's order, with `estimate` (a call's worst case), `durations`,
`headers` (the `x-ratelimit-*` answer) and `tenants` (the `UserAPIKeyAuth` hooks see).
"""
