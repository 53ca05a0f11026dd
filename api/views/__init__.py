"""Thin adapters: a read is a shaped queryset, a write is one service call (docs/api.md)."""
