"""Deterministic simulated province streams and deliberately broken records, for demos and tests."""

from ioc.simulator.invalid import INVALID_KINDS, invalid_record, invalid_records, kinds_for
from ioc.simulator.province import ProvinceSimulator, Service, SimEvent, build_services

__all__ = [
    "INVALID_KINDS",
    "ProvinceSimulator",
    "Service",
    "SimEvent",
    "build_services",
    "invalid_record",
    "invalid_records",
    "kinds_for",
]
