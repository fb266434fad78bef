"""Providers turn configuration sources (files now, Kubernetes later) into a Snapshot."""
