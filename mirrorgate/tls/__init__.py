"""TLS for mirrorgate: Secrets' certificates (``certs``), HTTPS listener contexts chosen by SNI
(``server``), verifying backend contexts under a BackendTLSPolicy (``client``).

Dependency rule: a leaf; imports nothing of mirrorgate but ``errors``. Every serving package may
import it. It does no I/O but loading PEM into OpenSSL (``keyfile``), and never logs key material.

How the rest of mirrorgate is meant to use it:
- Translator: ``certs.parse_tls_secret(crt, key)`` per ``certificateRefs`` entry; an
  ``InvalidCertificate`` is the listener condition ``ResolvedRefs=False`` reason
  ``InvalidCertificateRef`` with its message; ``CertifiedKey.warnings()`` (expired, no DNS name)
  go to the report and logs. The routing table names each pair by ``CertifiedKey.digest`` and keeps
  the pairs beside it (a digest -> pair map that ``config_dump`` never encodes: a dump shows
  digests, the DNS names and the validity window, never PEM). ``msgspec``, ``pickle``, ``copy``
  and ``dataclasses.asdict`` all refuse a ``PrivateKey``, so a pair that slips into a dump fails
  loudly instead of leaking. With ``--workers N`` the supervisor should send the Secrets' bytes to the
  workers in the frame that carries the table, and each worker parse them itself.
- Data plane, per TLS port: ``server.TlsPort(listeners)``, ``loop.create_server(...,
  ssl=port.context, ssl_handshake_timeout=10.0)`` (uvloop's default is 60 s, too long for a
  handshake that never comes); a reload calls ``port.reload(...)`` instead of reopening the socket.
  After the handshake ``server.chosen_listener(ssl_object)`` restricts the matcher to that
  listener's routes, ``port.misdirected(chosen, host)`` answers 421, and requests carry
  ``X-Forwarded-Proto: https``.
- Upstream pool: ``client.BackendTls`` is part of the IR backend and of the pool key
  ``(address, port, BackendTls | None)``; ``client.ClientTlsCache`` hands out one ``ClientTls`` per
  settings, whose ``connect_kwargs()`` go to ``create_connection``, ``verify()`` runs after the
  handshake and ``remember()`` when a connection goes idle (session resumption for the next one).
  ``ExternalName`` backends resolve through ``mirrorgate.upstream.dns.Resolver`` first; the policy's
  ``hostname`` stays the SNI whatever address the name resolved to.
"""
