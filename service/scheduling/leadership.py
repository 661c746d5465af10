"""Who runs the scheduler: one leader among the processes sharing a database.

- `AdvisoryLockLeadership` (PostgreSQL, the default there): `pg_try_advisory_lock(key)` on a
  dedicated connection kept open while the process leads. The lock is session-level: it is held
  until that connection closes, so a process that dies (or whose connection drops) releases it at
  once and a follower takes over on its next poll. No clock is involved. The key is derived from
  the database and schema names, so separate zhidu databases/schemas on one server do not contend.
- `LeaseLeadership` (SQLite, and available on PostgreSQL as `leadership: lease`): a row in
  `scheduler_leases` with an expiry the leader renews every third of `lease_seconds`; a follower
  takes it only once expired (a conditional UPDATE, so one taker wins). A dead leader is replaced
  after at most `lease_seconds` + `poll_seconds`. It relies on the hosts' clocks agreeing, which on
  SQLite (one host) is given.

Neither is the last line of defence: if two processes ever schedule at once (a leader stalled past
its lease, a network partition), the run ledger still lets each (job, fire time) run once.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from service.db.base import engine_for
from service.scheduling import flows
from service.scheduling.registry import SessionFactory

log = logging.getLogger("zhidu.scheduling")

# libpq keepalives on the lock connection: a silently dead server is noticed within ~25 s.
_KEEPALIVE_ARGS = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def advisory_key(database: str, schema: str) -> int:
    """A signed 64-bit advisory lock key for the scheduler of `database`.`schema`."""
    digest = hashlib.blake2b(f"zhidu.scheduler:{database}:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def advisory_key_of(session_or_connection: Session | Connection) -> int:
    row = session_or_connection.execute(text("SELECT current_database(), current_schema()")).one()
    return advisory_key(str(row[0]), str(row[1]))


class Leadership(ABC):
    mechanism: str

    def __init__(self, *, holder: str, session_factory: SessionFactory, lease_seconds: float) -> None:
        self.holder = holder
        self.session_factory = session_factory
        self.ttl = timedelta(seconds=lease_seconds)

    @abstractmethod
    def acquire(self) -> bool:
        """Try to become the leader; True if this process leads now."""

    @abstractmethod
    def confirm(self) -> bool:
        """Called periodically by the leader: renew, and say whether it still leads."""

    @abstractmethod
    def release(self) -> None:
        """Stop leading (idempotent)."""

    def close(self) -> None:
        """Stop leading and free resources."""
        self.release()


class AdvisoryLockLeadership(Leadership):
    mechanism = "advisory"

    def __init__(
        self, *, database_url: str, holder: str, session_factory: SessionFactory, lease_seconds: float
    ) -> None:
        super().__init__(holder=holder, session_factory=session_factory, lease_seconds=lease_seconds)
        self._engine: Engine = engine_for(database_url, poolclass=NullPool, connect_args=_KEEPALIVE_ARGS)
        self._connection: Connection | None = None
        self._key: int | None = None
        self._held = False

    def _connect(self) -> Connection:
        if self._connection is None:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._key = advisory_key_of(connection)
            self._connection = connection
        return self._connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._held = False
        if connection is not None:
            try:
                connection.close()
            except Exception:
                log.debug("closing the lock connection failed", exc_info=True)

    def acquire(self) -> bool:
        try:
            connection = self._connect()
            got = bool(
                connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar()
            )
        except Exception:
            log.warning("advisory lock: cannot reach the database", exc_info=True)
            self._drop_connection()
            return False
        self._held = got
        if got:
            self._record(renew=False)
        return got

    def _record(self, *, renew: bool) -> None:
        """Show this process as the leader in scheduler_leases (the lock decides; this informs)."""
        try:
            if renew and flows.renew_lease(self.session_factory, holder=self.holder, ttl=self.ttl):
                return
            flows.record_leader(
                self.session_factory, holder=self.holder, mechanism=self.mechanism, ttl=self.ttl
            )
        except Exception:
            log.warning("could not record the leader in scheduler_leases", exc_info=True)

    def confirm(self) -> bool:
        if not self._held or self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1")).scalar()
        except Exception:
            log.error("advisory lock: the lock connection broke; leadership is lost", exc_info=True)
            self._drop_connection()
            return False
        self._record(renew=True)
        return True

    def release(self) -> None:
        if self._connection is not None and self._held:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                flows.release_lease(self.session_factory, holder=self.holder)
            except Exception:
                log.warning("advisory unlock failed (closing the connection releases it)", exc_info=True)
        self._drop_connection()

    def close(self) -> None:
        self.release()
        self._engine.dispose()


class LeaseLeadership(Leadership):
    mechanism = "lease"

    def __init__(self, *, holder: str, session_factory: SessionFactory, lease_seconds: float) -> None:
        super().__init__(holder=holder, session_factory=session_factory, lease_seconds=lease_seconds)
        self._expires: datetime | None = None

    def acquire(self) -> bool:
        now = datetime.now(UTC)
        try:
            got = flows.acquire_lease(self.session_factory, holder=self.holder, ttl=self.ttl, now=now)
        except Exception:
            log.warning("lease: cannot reach the database", exc_info=True)
            return False
        self._expires = now + self.ttl if got else None
        return got

    def confirm(self) -> bool:
        if self._expires is None:
            return False
        now = datetime.now(UTC)
        try:
            renewed = flows.renew_lease(self.session_factory, holder=self.holder, ttl=self.ttl, now=now)
        except Exception:
            # Keep leading while our lease lasts; the database may be back before it expires.
            log.warning("lease: renewal failed", exc_info=True)
            return now < self._expires
        if not renewed:
            log.error("lease: another process holds the lease now; leadership is lost")
            self._expires = None
            return False
        self._expires = now + self.ttl
        return True

    def release(self) -> None:
        if self._expires is None:
            return
        self._expires = None
        try:
            flows.release_lease(self.session_factory, holder=self.holder)
        except Exception:
            log.warning("lease: release failed (it expires by itself)", exc_info=True)
