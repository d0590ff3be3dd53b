"""Downloads that never leave a half-written file, checksums, and decoded caches.

A download streams into a temporary file next to its destination, checks the
md5 while it reads, and only then renames the file into place (an atomic
``os.replace``). A dropped connection or a wrong checksum leaves nothing behind.

Decoded arrays are cached in ``sl.config.cache_dir()`` under a key built from
the source file's path, size and modification time, so a changed source is
decoded again; the cache is written atomically as well.

Used by notebooks/01_twin_network.ipynb and every lesson that loads data.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from .. import config

CHUNK = 1 << 16
TIMEOUT_S = 20.0
_FAILED: dict[tuple, Exception] = {}  # downloads that failed in this process


class DownloadError(RuntimeError):
    """Every URL tried for a file failed; the message lists each URL and why.

    Raised by fetch; handled by load_mnist and load_omniglot (lesson 01 onwards).
    """


class ChecksumError(DownloadError):
    """A file's md5 is not the published one (a corrupt download or local file).

    Raised by fetch; handled by load_mnist and load_omniglot (lesson 01 onwards).
    """


class DataNotFoundError(FileNotFoundError):
    """A dataset is neither on disk nor downloadable; the message says where we looked and what to do.

    Used in notebooks/06_omniglot_one_shot.ipynb.
    """


def md5sum(path: str | os.PathLike) -> str:
    """The md5 hex digest of a file, read in chunks.

    Used by load_mnist and load_omniglot to verify files (lesson 01 onwards).
    """
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_md5(path: Path, md5: str | None) -> None:
    """Raise :class:`ChecksumError` if ``path`` does not have the md5 ``md5`` (``None``: nothing to check)."""
    if md5 is None:
        return
    got = md5sum(path)
    if got != md5:
        raise ChecksumError(
            f"{path} has md5 {got}, expected {md5}: the file is corrupt or a different version. "
            "Delete it and download it again (or copy a good one from the data mirror)."
        )


def is_writable_dir(path: Path) -> bool:
    """True if ``path`` (or the nearest existing parent it would be created in) may be written.

    A folder whose mode has no write bit at all (``chmod a-w``, like the shared
    mirror) counts as read-only even for root, who bypasses permission checks:
    the loaders then read it and never try to download into it.
    """
    p = Path(path)
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    return p.is_dir() and bool(p.stat().st_mode & 0o222) and os.access(p, os.W_OK | os.X_OK)


def _fetch_one(url: str, dest: Path, md5: str | None, timeout: float) -> None:
    from tqdm.auto import tqdm

    tmp = None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
            h = hashlib.md5()
            with os.fdopen(fd, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, desc=dest.name, leave=False
            ) as bar:
                received = 0
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:  # the server hung up mid-file
                raise http.client.IncompleteRead(b"", total - received)
        got = h.hexdigest()
        if md5 is not None and got != md5:
            raise ChecksumError(f"{url}: downloaded file has md5 {got}, expected {md5} (corrupt or changed upstream)")
        os.replace(tmp, dest)
        tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def fetch(urls: list[str] | str, dest: str | os.PathLike, md5: str | None = None, timeout: float = TIMEOUT_S) -> Path:
    """Download ``dest`` from the first of ``urls`` that works, checking ``md5``.

    The bytes go to a temporary file in ``dest``'s folder and are renamed into
    place only when complete and (if ``md5`` is given) verified, so no partial
    or corrupt file is ever left at ``dest``.

    Raises :class:`ChecksumError` if a server sent bytes with the wrong md5 (and
    no other URL gave the right ones), :class:`DownloadError` if every URL
    failed otherwise; both messages name each URL and its failure.

    Used by load_mnist and load_omniglot (lesson 01 onwards).
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError("fetch needs at least one URL.")
    dest = Path(dest)
    key = (str(dest.resolve()), tuple(urls), md5)
    if key in _FAILED:  # an offline machine should not wait on every call
        raise _FAILED[key]
    failures: list[str] = []
    bad_checksum = False
    created = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]  # deepest first
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {dest.parent} to download {dest.name} into: {e}") from e
    for url in urls:
        try:
            _fetch_one(url, dest, md5, timeout)
            return dest
        except ChecksumError as e:
            bad_checksum = True
            failures.append(str(e))
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:  # HTTPError is a URLError
            failures.append(f"{url}: {type(e).__name__}: {e}")
    for folder in created:  # leave the data root as we found it: no empty folders behind
        try:
            folder.rmdir()
        except OSError:
            break
    kind = ChecksumError if bad_checksum else DownloadError
    error = kind(
        f"could not download {dest.name}; nothing was written to {dest.parent}. Tried:\n  "
        + "\n  ".join(failures)
        + "\n(not retried in this Python process; restart it, e.g. the notebook kernel, to try again)"
    )
    _FAILED[key] = error
    raise error


# ----------------------------------------------------------------- decoded caches
def source_key(*paths: Path, extra: str = "") -> str:
    """A short key that changes when any source file's path, size or mtime changes."""
    h = hashlib.sha1(extra.encode())
    for p in paths:
        st = Path(p).stat()
        h.update(f"{Path(p).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cache_path(kind: str, name: str, key: str) -> Path | None:
    """``cache_dir()/kind/name-key.npz``, or ``None`` if no writable cache folder can be made."""
    try:
        folder = config.cache_dir() / kind
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder / f"{name}-{key}.npz"


def load_npz(path: Path | None) -> dict | None:
    """The arrays in a cache file, or ``None`` if it is absent or unreadable (it is then rebuilt)."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None


def save_npz(path: Path | None, **arrays) -> None:
    """Write a cache file atomically (temp file + ``os.replace``); a failure only costs the cache."""
    if path is None:
        return
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
