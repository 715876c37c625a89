"""Temporary access granted by reviewed files: access/ files in, RoleBindings with an expiry out (see
docs/architecture.md, "Grants: evidence in, bindings out")."""
