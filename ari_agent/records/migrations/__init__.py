"""Alembic migrations of the call-record database, shipped in the package and run by ``records.store``
(no ``alembic.ini``): ``env.py`` plus one file per schema in ``versions/``."""
