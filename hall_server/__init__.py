"""The reference hall server: FastAPI + SQLAlchemy implementation of docs/hall-api.md.

It never imports the desk (`counter_app`, `ui`) nor the client library (`api_client`): the
two sides share only the HTTP contract.
"""

__version__ = "0.1.0"
