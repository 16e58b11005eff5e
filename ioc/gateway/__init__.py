"""The integration gateway's pure core: what a pushed request may contain and who may push it.

``items`` turns a request body in any supported format into per-item outcomes (an event ready
for the broker, or a rejection with a JSON pointer); ``integrations`` holds credentials'
scopes; ``ratelimit`` the token buckets. The HTTP and syslog adapters are ``ioc.api.gateway``
and ``ioc.api.syslog``; ``pipelines.gateway`` runs them.
"""
