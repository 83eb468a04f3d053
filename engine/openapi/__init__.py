"""OpenAPI in and out: capability files written from OpenAPI documents, and OpenAPI 3.1 for REST exposes blocks."""
