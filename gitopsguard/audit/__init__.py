"""The audit log: every action as an append-only JSON line, chained by hashes so tampering shows."""

from gitopsguard.audit.log import AuditLog, Verification, records_for
from gitopsguard.audit.record import AuditRecord
from gitopsguard.visible import printable

__all__ = ["AuditLog", "AuditRecord", "Verification", "printable", "records_for"]
