"""The admin server: health, readiness, metrics, config and status on a separate port."""
