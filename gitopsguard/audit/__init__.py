"""The audit log: every action as an append-only JSON line, chained by hashes so tampering shows."""

from gitopsguard.audit.log import AuditLog, AuditRecord, Verification, records_for

__all__ = ["AuditLog", "AuditRecord", "Verification", "records_for"]
