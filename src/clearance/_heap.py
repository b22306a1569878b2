"""Keeping the garbage collector off what a long-running server built at start-up.

A gateway replica opens by replaying its log into the verifiable index: about
sixteen objects the cyclic garbage collector tracks per release (the index's
records, the sparse Merkle map's nodes), which live as long as the process.
CPython's full collection visits every tracked object each time, and it runs
whenever the objects that survived younger collections reach a quarter of the
long-lived ones: on a replica opened over 60,000 releases, a pause of about
0.7 s with the interpreter lock held (no request answered, no batch committed)
at every quarter's growth, and longer as the log grows.

:func:`freeze_long_lived` collects once, so that no cyclic garbage left by the
start-up is kept, and then moves every surviving object to the collector's
permanent generation (``gc.freeze``), which no collection visits.  A full
collection afterwards costs in proportion to what was made since the start,
not to the whole log.  What is given up: an object frozen here that later
becomes part of an unreachable cycle is not reclaimed.  That amount is bounded by
the start-up heap and cannot grow: objects made later are collected as usual.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> int:
    """Collect, then exempt every object alive now from later collections.

    Call once a server has built what it keeps for its lifetime, before it
    takes requests.  Returns how many objects are now frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
