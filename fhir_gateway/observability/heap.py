"""The start-up heap, frozen once a long-running process has started.

A started gateway holds some 300,000 objects that live as long as the process: the imported
modules, the FHIR models' validators, the compiled JSON schemas, the rules. Python's cyclic
collector walks all of them in every full collection, which comes every few dozen messages and
cost about 150 ms each on the 2-core development machine (4 ms an A01 on average, and the spikes
in every latency figure). ``gc.freeze()`` moves them to a generation the collector skips. They are
still freed by reference counting; only a cycle among them would never be collected, which
start-up state, kept for the life of the process, does not mind.

The young generation is then collected every 50,000 new objects instead of 700: a message
allocates thousands (its parsed JSON, models, rows), nearly all freed by reference counting as it
ends, and at 700 the collector ran one to two times per admission, walking objects still in use
and promoting them (0.2–0.3 ms of an A01's ~11 ms of CPU, measured). Only garbage in cycles waits
longer: at most that many objects.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["YOUNG_THRESHOLD", "freeze_start_up_heap"]

YOUNG_THRESHOLD = 50_000  # new container objects between collections of the young generation

log = logging.getLogger("fhir_gateway")


def freeze_start_up_heap(enabled: bool) -> int:
    """Call once start-up is done and before any request: collects what start-up left as garbage,
    then freezes the rest and collects the young generation less often. Returns how many objects
    are frozen (0 when ``enabled`` is false)."""
    if not enabled:
        return 0
    gc.collect()  # garbage is freed, not frozen
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    frozen = gc.get_freeze_count()
    log.debug("start-up heap: %d objects kept out of the collector's full passes", frozen)
    return frozen
