"""Clients of pixport's own gRPC API (used by the `pixport` command)."""
