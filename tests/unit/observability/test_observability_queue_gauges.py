from __future__ import annotations

from pixport.observability.queue_gauges import pending_by_organization
from pixport.store.queue_depth import QueueDepth


def test_top_organisations_by_name_and_the_rest_as_other() -> None:
    depths = [QueueDepth("pending", f"org{i}", i) for i in range(1, 6)] + [QueueDepth("running", "org9", 50)]
    assert pending_by_organization(depths, top=2) == {"org5": 5, "org4": 4, "other": 6}
    assert pending_by_organization(depths, top=10) == {f"org{i}": i for i in range(1, 6)}
