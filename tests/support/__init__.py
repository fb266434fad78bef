"""Shared test support: one raw HTTP client, one set of fake backends, one set of manifest builders."""
