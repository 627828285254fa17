"""asgi-lab: one FastAPI app, several ASGI servers, several proxies, measured."""

__version__ = "0.1.0"
