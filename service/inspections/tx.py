"""Transaction helper shared by the flows of inspections, notices, penalties and self-checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session


@contextmanager
def committed(session: Session) -> Iterator[Session]:
    """Commit what the block did, or roll it back if it raises."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
