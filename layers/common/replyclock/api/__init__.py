"""The HTTP API: routes split by resource (one Router each), errors mapped in one place, OpenAPI docs.

functions/api/app.py builds the resolver from these; route functions only parse, call
the stores and the pure logic, and return a model from replyclock.models.api.
"""
