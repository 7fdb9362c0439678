"""SimNetwork: latency from the region model, FIFO links, loss, duplication, reordering,
bandwidth that respects message sizes, partitions and the bounds on queues."""

from __future__ import annotations

import random

import pytest

from netsim.engine import EventLoop
from netsim.limits import MAX_IN_FLIGHT_BYTES_PER_LINK, MAX_MESSAGE_BYTES
from netsim.network import JITTER_FLOOR_US, SimNetwork
from netsim.node_api import Envelope
from netsim.regions import CITIES, LatencyTable, LinkClass, base_latency_us, link_class
from netsim.topology import build_topology

Arrival = tuple[int, int, int, bytes]  # time µs, src, dst, data


def make_network(
    cities: tuple[str, ...] = ("paris", "lyon"), nodes: int = 4, seed: int = 0
) -> tuple[EventLoop, SimNetwork, list[Arrival]]:
    loop = EventLoop()
    topology = build_topology(nodes, nodes, LatencyTable(cities), random.Random(seed))
    arrivals: list[Arrival] = []
    network = SimNetwork(
        loop,
        topology,
        random.Random(seed),
        lambda src, dst, env: arrivals.append((loop.now_us, src, dst, env.data)),
    )
    return loop, network, arrivals


def message(index: int, size: int = 10) -> Envelope:
    return Envelope(index.to_bytes(4, "big") + bytes(size - 4))


# --- the region model ----------------------------------------------------------------------------


def test_latency_grows_with_distance_across_link_classes() -> None:
    paris, lyon, london, sydney = (CITIES[c] for c in ("paris", "lyon", "london", "sydney"))
    assert link_class(paris, paris) is LinkClass.SAME_CITY
    assert link_class(paris, lyon) is LinkClass.NATIONAL
    assert link_class(paris, london) is LinkClass.CONTINENTAL
    assert link_class(paris, sydney) is LinkClass.INTERCONTINENTAL
    same, national = base_latency_us(paris, paris), base_latency_us(paris, lyon)
    continental, far = base_latency_us(paris, london), base_latency_us(paris, sydney)
    assert same < national < continental < far
    assert 1_000 <= national <= 6_000  # a few milliseconds across France
    assert 80_000 <= far <= 160_000  # over a hundred milliseconds to Australia


def test_unknown_topologies_and_cities_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown topology"):
        LatencyTable.preset("mars")
    with pytest.raises(ValueError, match="distinct names"):
        LatencyTable(("paris", "paris"))


# --- delivery ------------------------------------------------------------------------------------


def test_a_message_arrives_after_its_base_latency_plus_jitter() -> None:
    loop, network, arrivals = make_network()
    network.send(0, 1, message(1))
    loop.run(10**9)
    ((time_us, src, dst, _),) = arrivals
    base = base_latency_us(CITIES["paris"], CITIES["lyon"])  # validators fill cities in turn
    assert (src, dst) == (0, 1)
    assert base < time_us < base + 50 * (base // 10 + JITTER_FLOOR_US)
    assert network.stats.delivered == 1
    assert network.stats.received_bytes[1] == 10


def test_links_are_fifo_unless_reordering_is_on() -> None:
    loop, network, arrivals = make_network(nodes=2)
    for index in range(200):
        network.send(0, 1, message(index))
    loop.run(10**9)
    assert [int.from_bytes(data[:4], "big") for *_, data in arrivals] == list(range(200))

    loop, network, arrivals = make_network(nodes=2)
    network.conditions.reorder = True
    for index in range(200):
        network.send(0, 1, message(index))
    loop.run(10**9)
    order = [int.from_bytes(data[:4], "big") for *_, data in arrivals]
    assert sorted(order) == list(range(200)) and order != list(range(200))


def test_loss_and_duplication_follow_their_rates() -> None:
    loop, network, arrivals = make_network(nodes=2)
    network.conditions.loss_ppm = 250_000
    for index in range(2_000):
        network.send(0, 1, message(index))
    loop.run(10**9)
    assert 1_350 < len(arrivals) < 1_650
    assert network.stats.dropped_loss == 2_000 - len(arrivals)

    loop, network, arrivals = make_network(nodes=2)
    network.conditions.duplicate_ppm = 100_000
    for index in range(2_000):
        network.send(0, 1, message(index))
    loop.run(10**9)
    assert 2_120 < len(arrivals) < 2_280
    assert network.stats.duplicated == len(arrivals) - 2_000


def test_the_uplink_serializes_messages_by_size() -> None:
    loop, network, arrivals = make_network(cities=("paris",), nodes=3)
    network.set_uplink(0, 1_000_000)  # 1 MB/s: 100 kB take 100 ms to leave
    network.multicast(0, (1, 2), message(1, size=100_000))
    loop.run(10**9)
    first, second = sorted(time_us for time_us, *_ in arrivals)
    assert first >= 100_000
    assert second - first >= 90_000  # the second copy waited for the first
    network.set_uplink(0, None)
    with pytest.raises(ValueError):
        network.set_uplink(0, 0)


def test_a_full_link_or_uplink_drops_and_counts() -> None:
    _, network, _ = make_network(cities=("paris",), nodes=2)
    big = message(0, size=MAX_MESSAGE_BYTES)
    for _ in range(MAX_IN_FLIGHT_BYTES_PER_LINK // MAX_MESSAGE_BYTES + 1):
        network.send(0, 1, big)
    assert network.stats.dropped_link_full == 1
    network.set_uplink(0, 1_000)  # 1 kB/s: a megabyte queues for far too long
    network.send(0, 1, message(0, size=1_000_000))
    network.send(0, 1, message(1))
    assert network.stats.dropped_uplink_full == 1


def test_bad_sends_are_refused() -> None:
    _, network, _ = make_network()
    with pytest.raises(ValueError, match="no link"):
        network.send(0, 0, message(1))
    with pytest.raises(ValueError, match="no link"):
        network.send(0, 9, message(1))
    with pytest.raises(ValueError, match="exceeds"):
        network.send(0, 1, Envelope(bytes(MAX_MESSAGE_BYTES + 1)))


# --- partitions ----------------------------------------------------------------------------------


def test_a_symmetric_partition_blocks_both_ways_until_healed() -> None:
    loop, network, arrivals = make_network(nodes=4)
    network.partition([(0, 1), (2, 3)])
    assert not network.can_reach(0, 2) and not network.can_reach(3, 1)
    assert network.can_reach(0, 1) and network.can_reach(2, 3)
    for src, dst in [(0, 2), (2, 0), (0, 1)]:
        network.send(src, dst, message(src))
    loop.run(10**9)
    assert [(src, dst) for _, src, dst, _ in arrivals] == [(0, 1)]
    assert network.stats.dropped_partition == 2
    network.heal()
    network.send(0, 2, message(0))
    loop.run(2 * 10**9)
    assert arrivals[-1][1:3] == (0, 2)


def test_a_one_way_partition_blocks_one_direction_only() -> None:
    _, network, _ = make_network(nodes=4)
    network.partition([(0, 1), (2, 3)], one_way=True)
    assert not network.can_reach(0, 2)
    assert network.can_reach(2, 0)


def test_messages_in_flight_when_a_partition_starts_are_lost() -> None:
    loop, network, arrivals = make_network(nodes=2)
    network.send(0, 1, message(1))
    network.partition([(0,), (1,)])
    loop.run(10**9)
    assert arrivals == []
    assert network.stats.dropped_partition == 1


def test_partition_groups_must_be_disjoint_and_at_least_two() -> None:
    _, network, _ = make_network()
    with pytest.raises(ValueError, match="two groups"):
        network.partition([(0, 1)])
    with pytest.raises(ValueError, match="in two groups"):
        network.partition([(0, 1), (1, 2)])
