"""Scheduled jobs with exactly-once runs: inspections (monthly, quarterly), later digests.

Pieces: job kinds registered by other domains (`registry`), schedules as data
(`policies/schedules.yaml`, `config`), one scheduler leader per database (`leadership`), APScheduler
3 on a persisted job store (`scheduler`), and the run ledger `job_runs` (`runner`, `flows`).

Exactly once, per (job, fire time):

1. One leader. Only the process holding leadership runs APScheduler; PostgreSQL: a session-level
   advisory lock on a dedicated connection (released the moment the process or its connection
   dies); SQLite: a lease row with an expiry renewed by the leader. APScheduler 3 itself does not
   coordinate several schedulers sharing a job store (each would run every job).
2. The ledger. Before a job runs, its row (job_id, fire_time, trigger) is INSERTed as `started`
   in a transaction of its own and committed; the unique constraint lets one process succeed,
   and a unique violation means "already run or running": skip. So even two schedulers firing
   together (a stalled leader, a partition) run a fire time once, and a restart that fires a
   time again (killed between running and saving the next fire time) does not repeat it.
3. Crashes mid-run. A running job's row is heartbeated; a row left `started` without heartbeat
   for `stale_after_seconds` is swept by the leader: retried (attempt 2, `retry_abandoned`
   times, default once) or marked `abandoned`. A retried run may repeat part of the first
   attempt's work, so job kinds keep their own writes idempotent (upserts).
4. Missed fire times (no leader for a while, e.g. all processes down): on start the leader
   keeps each job's persisted next fire time; APScheduler coalesces all due fire times into ONE
   run for the latest of them (`coalesce=True`), run if it is within the job's
   `misfire_grace_seconds`, else recorded in the ledger as `missed` (not run). Earlier missed
   fire times are neither run nor recorded.

On-demand runs (`runner.run_now`, `POST /api/v1/schedules/{job_id}/run`) are ledger rows with
trigger `manual` and the request time as fire time, so they never collide with scheduled ones.
"""

from service.scheduling.registry import register_job_kind

__all__ = ["register_job_kind"]
