"""The HTTP API (FastAPI): `create_app` builds it; `service.api.deps` is what routes import."""

from service.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
