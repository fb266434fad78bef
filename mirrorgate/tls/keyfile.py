"""PEM bytes as a path for ``ssl.SSLContext.load_cert_chain``, which reads only files.

Rules:
- Key material never lands on a disk when it can be helped: on Linux the PEM goes into an anonymous
  memory file (``memfd_create``), read back through ``/proc/self/fd/N``; elsewhere into a private
  temporary directory (mode 0700, the file 0600).
- The file lives only for the ``with`` block and is closed or removed even when loading fails.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def pem_path(pem: bytes) -> Iterator[str]:
    """A path whose content is ``pem``, valid inside the block only."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        with memory_file(pem) as path:
            yield path
    else:
        with private_file(pem) as path:
            yield path


@contextmanager
def memory_file(pem: bytes) -> Iterator[str]:
    fd = os.memfd_create("mirrorgate-tls", os.MFD_CLOEXEC)
    try:
        os.write(fd, pem)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


@contextmanager
def private_file(pem: bytes) -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="mirrorgate-tls-")  # mode 0700
    try:
        path = os.path.join(directory, "pair.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
