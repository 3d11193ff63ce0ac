"""The start-up heap, frozen once a long-running process has started.

A started gateway holds some 300,000 objects that live as long as the process: the imported
modules, the FHIR models' validators, the compiled JSON schemas, the rules. Python's cyclic
collector walks all of them in every full collection, which comes every few dozen messages and
cost about 150 ms each on the 2-core development machine (4 ms an A01 on average, and the spikes
in every latency figure). ``gc.freeze()`` moves them to a generation the collector skips. They are
still freed by reference counting; only a cycle among them would never be collected, which
start-up state, kept for the life of the process, does not mind.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["freeze_start_up_heap"]

log = logging.getLogger("fhir_gateway")


def freeze_start_up_heap(enabled: bool) -> int:
    """Call once start-up is done and before any request: collects what start-up left as garbage,
    then freezes the rest. Returns how many objects are frozen (0 when ``enabled`` is false)."""
    if not enabled:
        return 0
    gc.collect()  # garbage is freed, not frozen
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("start-up heap: %d objects kept out of the collector's full passes", frozen)
    return frozen
