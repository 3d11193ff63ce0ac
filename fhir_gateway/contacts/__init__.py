"""Caring contacts: brief scheduled messages to a patient after discharge, sent through the outbox
by e-mail or a messaging webhook, stopped on request or when consent is withdrawn."""
