"""The REST API: thin adapters over the services, an OpenAPI schema, tokens, idempotency and FHIR export."""
