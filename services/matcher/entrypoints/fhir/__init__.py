"""The service as a CPTS agenda manager for the national SAS platform (FHIR R4, under /fhir).

`codes` holds the guide's profiles, systems and codes; `search` and `appointment` read what the
platform sends (pure); `resources` builds what we answer (pure, with `fhir.resources` models);
`api` is the HTTP layer; the database work is in `services/matcher/platform.py`.
"""
