"""The messages the actors exchange: small, frozen, and in one place.

`messages` holds what the router and the deployment actors are sent and answer; `events` the
logging events for the callback actor and user actors.  They sit low in the house so that an
actor and its callers share the vocabulary without importing each other.
"""
