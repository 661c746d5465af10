"""Rectification notices (整改通知): numbering, lifecycle, responses with evidence, verification,
reminders and escalation; waivers of findings."""
