"""The region model: where nodes are, and how long a message takes between two places.

One-way latency between two cities is ``last-mile overhead(link class) + great-circle
distance x route factor / speed of light in fiber``, so Paris–Lyon is a few milliseconds and
Paris–Sydney over a hundred, as measured on real networks. The link class says how far apart
two nodes are: the same city, the same country (national), the same continent, or across
continents. Each message adds jitter (exponential, its mean a fraction of the base latency),
drawn by the network from its own random stream.

Presets (``TOPOLOGIES``) place nodes in one city, across one country, across one continent or
around the world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from netsim.errors import ConfigError

FIBER_KM_PER_MS: Final = 200.0
"""Speed of light in optical fiber, in kilometres per millisecond."""

ROUTE_FACTOR: Final = 1.3
"""Cable routes are this much longer than the great circle."""

EARTH_RADIUS_KM: Final = 6_371.0


class LinkClass(IntEnum):
    """How far apart the two ends of a link are."""

    SAME_CITY = 0
    NATIONAL = 1
    CONTINENTAL = 2
    INTERCONTINENTAL = 3


LAST_MILE_US: Final = {
    LinkClass.SAME_CITY: 250,
    LinkClass.NATIONAL: 1_000,
    LinkClass.CONTINENTAL: 2_000,
    LinkClass.INTERCONTINENTAL: 5_000,
}
"""Fixed overhead of a link (access networks, routers), in microseconds, by link class."""


@dataclass(frozen=True, slots=True)
class City:
    """A place nodes can be in."""

    name: str
    country: str
    continent: str
    latitude: float
    longitude: float


CITIES: Final = {
    city.name: city
    for city in (
        City("paris", "FR", "europe", 48.857, 2.352),
        City("lyon", "FR", "europe", 45.764, 4.836),
        City("marseille", "FR", "europe", 43.296, 5.370),
        City("lille", "FR", "europe", 50.629, 3.057),
        City("toulouse", "FR", "europe", 43.605, 1.444),
        City("bordeaux", "FR", "europe", 44.838, -0.579),
        City("london", "GB", "europe", 51.507, -0.128),
        City("frankfurt", "DE", "europe", 50.110, 8.682),
        City("madrid", "ES", "europe", 40.417, -3.704),
        City("stockholm", "SE", "europe", 59.329, 18.069),
        City("warsaw", "PL", "europe", 52.230, 21.012),
        City("new-york", "US", "north-america", 40.713, -74.006),
        City("chicago", "US", "north-america", 41.878, -87.630),
        City("sao-paulo", "BR", "south-america", -23.551, -46.633),
        City("lagos", "NG", "africa", 6.524, 3.379),
        City("nairobi", "KE", "africa", -1.292, 36.822),
        City("mumbai", "IN", "asia", 19.076, 72.878),
        City("singapore", "SG", "asia", 1.352, 103.820),
        City("tokyo", "JP", "asia", 35.677, 139.650),
        City("sydney", "AU", "oceania", -33.869, 151.209),
    )
}

TOPOLOGIES: Final = {
    "city": ("paris",),
    "national": ("paris", "lyon", "marseille", "lille", "toulouse", "bordeaux"),
    "continental": ("paris", "london", "frankfurt", "madrid", "stockholm", "warsaw"),
    "global": (
        "paris",
        "london",
        "frankfurt",
        "new-york",
        "chicago",
        "sao-paulo",
        "lagos",
        "nairobi",
        "mumbai",
        "singapore",
        "tokyo",
        "sydney",
    ),
}
"""Named sets of cities nodes are spread over."""


def link_class(a: City, b: City) -> LinkClass:
    """How far apart ``a`` and ``b`` are."""
    if a.name == b.name:
        return LinkClass.SAME_CITY
    if a.country == b.country:
        return LinkClass.NATIONAL
    if a.continent == b.continent:
        return LinkClass.CONTINENTAL
    return LinkClass.INTERCONTINENTAL


def distance_km(a: City, b: City) -> float:
    """Great-circle distance (haversine)."""
    lat_a, lat_b = math.radians(a.latitude), math.radians(b.latitude)
    d_lat = lat_b - lat_a
    d_lon = math.radians(b.longitude - a.longitude)
    h = math.sin(d_lat / 2) ** 2 + math.cos(lat_a) * math.cos(lat_b) * math.sin(d_lon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def base_latency_us(a: City, b: City) -> int:
    """One-way latency between ``a`` and ``b`` without jitter, in microseconds."""
    propagation_us = distance_km(a, b) * ROUTE_FACTOR / FIBER_KM_PER_MS * 1_000
    return LAST_MILE_US[link_class(a, b)] + round(propagation_us)


class LatencyTable:
    """Base latencies and link classes between the cities of one topology (precomputed)."""

    __slots__ = ("cities", "classes", "latency_us")

    def __init__(self, city_names: tuple[str, ...]) -> None:
        """The table over ``city_names`` (ConfigError for an unknown or repeated name)."""
        unknown = [name for name in city_names if name not in CITIES]
        if unknown or not city_names or len(set(city_names)) != len(city_names):
            raise ConfigError(f"cities must be distinct names from {sorted(CITIES)}")
        self.cities: tuple[City, ...] = tuple(CITIES[name] for name in city_names)
        self.latency_us: tuple[tuple[int, ...], ...] = tuple(
            tuple(base_latency_us(a, b) for b in self.cities) for a in self.cities
        )
        self.classes: tuple[tuple[LinkClass, ...], ...] = tuple(
            tuple(link_class(a, b) for b in self.cities) for a in self.cities
        )

    @classmethod
    def preset(cls, topology: str) -> LatencyTable:
        """The table of a named topology (ConfigError if unknown)."""
        if topology not in TOPOLOGIES:
            raise ConfigError(f"unknown topology {topology!r}; choose from {sorted(TOPOLOGIES)}")
        return cls(TOPOLOGIES[topology])
