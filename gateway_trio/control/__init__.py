"""The control plane (SPEC §9): keys, teams, users and end-users, their budgets and limits.

The master key alone cannot tell one app or person from another, so every caller gets a
virtual key of its own.  `records` holds the stored objects, `store` keeps them in the
database, `admission` decides per call (in one place, in SPEC §9's order) whether a key may
make it and reserves what it may cost; the admin routes in `routes/` are thin over these.
"""
