"""TLS for mirrorgate: Secrets' certificates (``certs``), HTTPS listener contexts chosen by SNI
(``server``), verifying backend contexts under a BackendTLSPolicy (``client``).

Dependency rule: a leaf; imports nothing of mirrorgate but ``errors``. Every serving package may
import it. It does no I/O but loading PEM into OpenSSL (``keyfile``), and never logs key material.
"""
