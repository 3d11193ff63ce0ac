"""Caring contacts: brief scheduled messages to a patient after discharge, sent through the outbox
by e-mail or a messaging webhook, stopped on request or when consent is withdrawn.

- **Schedule** (data): ``PlanDefinition/caring-contacts`` (weekly in the first month, then monthly
  to twelve months); **messages** (data): ``ActivityDefinition/caring-contact``, by language, with
  the crisis line of the facility's country; both in ``mappings/contacts/`` (``seed`` stores them).
- **Consent** (``_consent``): opt-in; a caring-contacts Consent must permit it (none: no series).
- **At discharge** (``_series.start``): one CommunicationRequest per message, in the patient's
  preferred language, by the medium that reaches them (Patient.telecom: e-mail, else SMS).
- **When due** (``enqueue_due``, run by the worker every ``contacts_interval`` seconds): an outbox
  row per message; the worker delivers it through ``CaringChannels`` (SMTP or the provider's
  webhook), with the outbox's retries and dead letters, and records a Communication.
- **Replies** (``_replies``): a ``caring-contact-reply`` work item; STOP ends the series.
- **Stopping** (``stop``): revoke the remaining requests (the patient's request, the API's
  ``$stop-caring-contacts``, a withdrawn consent); queued messages are then withdrawn, not sent.

    install(rules, settings)                 # by the composition root (app.build_rules)
    database.write(enqueue_due, settings)    # what the worker runs when it is time
"""

from __future__ import annotations

from fhir_gateway.contacts._channels import CaringChannels, Sent
from fhir_gateway.contacts._codes import (
    CARING_CONTACT,
    CHANNELS,
    CONTACTS_SYSTEM,
    STOP,
    is_caring,
)
from fhir_gateway.contacts._consent import caring_consent, permits_contact
from fhir_gateway.contacts._data import seed
from fhir_gateway.contacts._due import enqueue_due
from fhir_gateway.contacts._messages import CaringMessage, compose, preferred_language, templates_of
from fhir_gateway.contacts._replies import asks_to_stop
from fhir_gateway.contacts._rules import install
from fhir_gateway.contacts._schedule import ScheduleError, occurrences
from fhir_gateway.contacts._series import remaining, stop
from fhir_gateway.contacts._service import stop_for_patient

__all__ = [
    "CARING_CONTACT",
    "CHANNELS",
    "CONTACTS_SYSTEM",
    "STOP",
    "CaringChannels",
    "CaringMessage",
    "ScheduleError",
    "Sent",
    "asks_to_stop",
    "caring_consent",
    "compose",
    "enqueue_due",
    "install",
    "is_caring",
    "occurrences",
    "permits_contact",
    "preferred_language",
    "remaining",
    "seed",
    "stop",
    "stop_for_patient",
    "templates_of",
]
