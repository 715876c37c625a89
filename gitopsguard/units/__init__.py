"""Units: many paths of the one repository, each reconciled on its own, declared as ``Unit`` objects in the
root path. Pure: reading a Unit's spec (``spec``), its identity (``identity``), the order of ``dependsOn``
(``order``), its status conditions (``conditions``) and which Units the root path vouches for (``root``).
No I/O here; the API edge is ``cluster/units.py``."""

from gitopsguard.units.conditions import (
    PassOutcome,
    Phase,
    Reason,
    readiness_of,
    ready_message,
    request_answered,
    status_of,
)
from gitopsguard.units.identity import UnitRef, unit_id
from gitopsguard.units.order import Order, Readiness, apply_order, blocked
from gitopsguard.units.spec import UnitDefaults, UnitSpec, is_unit, parse_unit

__all__ = [
    "Order", "PassOutcome", "Phase", "Readiness", "Reason", "UnitDefaults", "UnitRef", "UnitSpec", "apply_order",
    "blocked", "is_unit", "parse_unit", "readiness_of", "ready_message", "request_answered", "status_of", "unit_id",
]  # fmt: skip
