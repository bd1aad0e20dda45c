"""The web studio (``recurrentgpt serve``): needs the ``web`` extra (fastapi, uvicorn)."""

from .app import create_app

__all__ = ["create_app"]
