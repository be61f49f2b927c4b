"""One Alembic revision per call-record schema: 0001 (the first), 0002 (recognition), 0003 (service level)."""
