"""API clients: who calls the service, with which role and scope (contract v2).

`roles.py` holds the rules (pure); `registry.py` keeps the clients in their own schema
`access`, read by every service's process; `api.py` is the admin's HTTP interface and `cli.py`
the same on the server (`sas-clients`).
"""
