"""Outgoing mail: the outbox (`mail_outbox`, every message ever sent or to send), MIME building, SMTP
sending with retries, and the rectification notices' reminders turned into mail."""
