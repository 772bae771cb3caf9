"""The claim loop with fakes of the queue and the journey: claims, batching, leases, stop and hand-back."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from pixport.domain.queue import ClaimedItem
from pixport.observability.metrics import LEASE_RECLAIMS
from pixport.runtime.runner import MAX_INFLIGHT_FACTOR, Runner


def item(number: int) -> ClaimedItem:
    return ClaimedItem(
        id=number, job_id="job1", organization_id="org1", position=number, external_id=f"e{number}", url="u",
        title="t", metadata={}, media_type="image", attempts=1, system_name="s",
    )


@dataclass
class FakeClaims:
    pending: list[ClaimedItem]
    fail_first: int = 0
    claims: list[tuple[str, int]] = field(default_factory=list)
    extended: list[list[int]] = field(default_factory=list)

    async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[ClaimedItem]:
        if self.fail_first:
            self.fail_first -= 1
            raise OSError("database away")
        self.claims.append((owner, limit))
        taken, self.pending = self.pending[:limit], self.pending[limit:]
        return [dataclasses.replace(i, lease_owner=owner) for i in taken]

    async def extend_leases(self, items: list[ClaimedItem], lease_seconds: float) -> None:
        self.extended.append([i.id for i in items])


@dataclass
class FakeJourney:
    block: asyncio.Event | None = None
    ran: list[int] = field(default_factory=list)
    handed_back: list[int] = field(default_factory=list)

    async def run(self, item: ClaimedItem) -> object:
        self.ran.append(item.id)
        if self.block is not None:
            await self.block.wait()
        return None

    async def hand_back(self, item: ClaimedItem) -> object:
        self.handed_back.append(item.id)
        return None


def runner(claims: FakeClaims, journey: FakeJourney, concurrency: int = 4, lease: float = 30.0) -> Runner:
    return Runner(claims=claims, journey=journey, owner="host:1", concurrency=concurrency, lease_seconds=lease,
                  sweep_seconds=0.05, grace_seconds=0.1)


async def until(condition: Callable[[], bool]) -> None:
    """Poll for up to 3 s: the loop under test has no event to wait on from outside."""
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached within 3 s")


async def test_every_claimed_item_runs_its_journey_once_with_a_fresh_owner_per_claim() -> None:
    claims, journey = FakeClaims([item(n) for n in range(10)]), FakeJourney()
    stop = asyncio.Event()
    task = asyncio.create_task(runner(claims, journey).run(stop))
    await until(lambda: len(journey.ran) == 10)
    stop.set()
    await task
    assert sorted(journey.ran) == list(range(10))
    owners = [owner for owner, _ in claims.claims]
    assert len(set(owners)) == len(owners) and all(o.startswith("host:1:") for o in owners)
    assert journey.handed_back == []


async def test_claims_never_exceed_the_free_slots() -> None:
    block = asyncio.Event()
    claims, journey = FakeClaims([item(n) for n in range(10)]), FakeJourney(block)
    stop = asyncio.Event()
    task = asyncio.create_task(runner(claims, journey, concurrency=4).run(stop))
    await until(lambda: len(journey.ran) == 4)
    await asyncio.sleep(0.15)  # several sweeps: nothing more may be claimed while all slots are busy
    assert len(journey.ran) == 4 and [limit for _, limit in claims.claims] == [4]
    block.set()
    await until(lambda: len(journey.ran) == 10)
    stop.set()
    await task


async def test_a_claim_failure_is_survived() -> None:
    claims, journey = FakeClaims([item(1)], fail_first=2), FakeJourney()
    stop = asyncio.Event()
    task = asyncio.create_task(runner(claims, journey).run(stop))
    await until(lambda: journey.ran == [1])
    stop.set()
    await task


async def test_stop_hands_unfinished_items_back_after_the_grace_period() -> None:
    claims, journey = FakeClaims([item(1), item(2)]), FakeJourney(asyncio.Event())
    stop = asyncio.Event()
    task = asyncio.create_task(runner(claims, journey).run(stop))
    await until(lambda: len(journey.ran) == 2)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert sorted(journey.handed_back) == [1, 2]


async def test_the_heartbeat_extends_the_leases_of_items_in_flight() -> None:
    block = asyncio.Event()
    claims, journey = FakeClaims([item(1)]), FakeJourney(block)
    stop = asyncio.Event()
    task = asyncio.create_task(runner(claims, journey, lease=0.15).run(stop))
    await until(lambda: [1] in claims.extended)
    block.set()
    stop.set()
    await task


async def test_a_reclaimed_item_is_counted() -> None:
    before = LEASE_RECLAIMS._value.get()
    reclaimed = dataclasses.replace(item(5), reclaimed=True)
    claims, journey = FakeClaims([reclaimed, item(6)]), FakeJourney()
    stop = asyncio.Event()
    task = asyncio.create_task(runner(claims, journey).run(stop))
    await until(lambda: len(journey.ran) == 2)
    stop.set()
    await task
    assert LEASE_RECLAIMS._value.get() == before + 1


async def test_items_only_waiting_for_their_finish_free_their_slots_up_to_a_bound() -> None:
    block = asyncio.Event()
    claims, journey = FakeClaims([item(n) for n in range(40)]), FakeJourney(block)
    waiting = {"count": 0, "all": False}  # how many in-flight items only wait for their finish

    def finishing() -> int:
        return len(loop.inflight) if waiting["all"] else waiting["count"]

    loop = Runner(claims=claims, journey=journey, owner="host:1", concurrency=2, lease_seconds=30,
                  sweep_seconds=0.05, grace_seconds=0.1, finishing=finishing)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await until(lambda: len(journey.ran) == 2)
    await asyncio.sleep(0.15)
    assert len(journey.ran) == 2  # both at work: no room
    waiting["count"] = 2  # both now only wait for their batched finish's commit
    loop.wake()
    await until(lambda: len(journey.ran) == 4)
    await asyncio.sleep(0.15)
    assert len(journey.ran) == 4  # the two new ones are at work
    waiting["all"] = True  # all waiting: more come in, but never more than the bound in all
    loop.wake()
    await until(lambda: len(journey.ran) == 8)
    await asyncio.sleep(0.15)
    assert len(journey.ran) == 2 * MAX_INFLIGHT_FACTOR and len(loop.inflight) == 2 * MAX_INFLIGHT_FACTOR
    block.set()
    await until(lambda: len(journey.ran) == 40)
    stop.set()
    await task
