"""Downloads that never leave a half-written file (a temp file, checked for length and md5 with torchvision's
``check_integrity``, then renamed; torchvision's ``download_url`` writes straight to the final name and has no
timeout), and decoded caches. Nothing remembers a failure: a later call retries."""
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


class DownloadError(RuntimeError):
    """Every URL tried for a file failed; the message lists each URL and why. Raised by fetch."""


class ChecksumError(DownloadError):
    """A file's md5 is not the published one (a corrupt download or local file). Raised by fetch."""


class DataNotFoundError(FileNotFoundError):
    """Data neither on disk nor downloadable; ``.details`` says where we looked. Used in 06_omniglot_one_shot.ipynb."""

    def __init__(self, what: str, details: list[str] = (), cause: Exception | None = None):
        self.details, self.cause = [d[:300] for d in details], cause
        fix = ("Set SIAMLIB_DATA to a folder that holds it (README, 'No internet?') before starting Jupyter, "
               "or call sl.config.set_data_root(path) in the first cell.")
        super().__init__("\n".join([f"{what} {fix}", *self.details]))

    def _render_traceback_(self) -> list[str]:  # Jupyter shows these few lines instead of a long traceback
        return [f"DataNotFoundError: {line}" if i == 0 else f"  {line}" for i, line in enumerate(str(self).splitlines())]


def check_md5(path: Path, md5: str | None) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has the md5 ``md5`` (``None``: nothing to check)."""
    from torchvision.datasets.utils import check_integrity  # imported here: torchvision is slow to import
    if md5 is not None and not check_integrity(path, md5):
        raise ChecksumError(f"{path.name} does not have the published md5 {md5}: the file is corrupt or another "
                            f"version. Delete {path} and download it again, or copy it from a data mirror.")


def is_writable_dir(path: Path) -> bool:
    """True if ``path`` (or its nearest existing parent) may be written; no write bit at all counts as read-only."""
    p = Path(path)
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    return p.is_dir() and bool(p.stat().st_mode & 0o222) and os.access(p, os.W_OK | os.X_OK)


def _fetch_one(url: str, dest: Path, md5: str | None) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=20) as response:
            expected = int(response.headers.get("Content-Length") or -1)
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
        got = os.path.getsize(tmp)
        if expected >= 0 and got != expected:  # the server hung up mid-file
            raise http.client.IncompleteRead(b"", expected - got)
        try:
            check_md5(Path(tmp), md5)
        except ChecksumError:
            raise ChecksumError(f"{url}: the downloaded file does not have the published md5 {md5}") from None
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fetch(urls: list[str] | str, dest: str | os.PathLike, md5: str | None = None) -> Path:
    """Download ``dest`` from the first of ``urls`` that works; nothing partial is ever left, no new empty folder.
    Raises :class:`ChecksumError` if a server sent a wrong md5 and no URL worked, else :class:`DownloadError`."""
    urls, dest = ([urls] if isinstance(urls, str) else list(urls)), Path(dest)
    created = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]  # deepest first
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot create {dest.parent} to download {dest.name} into: {err}") from None
    failures, bad_md5 = [], False
    for url in urls:
        try:
            _fetch_one(url, dest, md5)
            return dest
        except ChecksumError as err:
            bad_md5 = True
            failures.append(str(err))
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
            failures.append(f"{url}: {type(err).__name__}: {err}")
    for folder in created:  # leave the data root as we found it
        try:
            folder.rmdir()
        except OSError:
            break
    raise (ChecksumError if bad_md5 else DownloadError)(
        f"could not download {dest.name}; nothing was written. Tried: " + "; ".join(failures))


def download_missing(files: dict[str, str | None], folder: Path, urls: list[str], download: bool):
    """Fetch each file ``name -> md5`` into ``folder`` from the first of the ``urls`` prefixes that works; returns
    why some may still be missing (the lines of a :class:`DataNotFoundError`) and the last failure."""
    if not download:
        return ["No download was tried (download=False)."], None
    if not is_writable_dir(folder):
        return [f"No download was tried: {folder} is read-only."], None
    reasons, cause = [], None
    for name, md5 in files.items():
        try:
            fetch([u + name for u in urls], folder / name, md5)
        except DownloadError as err:
            reasons.append(f"Download failed: {err}")
            cause = err
    return reasons, cause


def cached_arrays(kind: str, name: str, source: Path, extra: str, decode) -> dict:
    """``decode()``'s arrays, cached atomically in ``cache_dir()/kind/name-<key>.npz``, the key changing with
    ``source``'s path, size and mtime and with ``extra``; a bad cache is decoded again."""
    st = Path(source).stat()
    key = hashlib.sha1(f"{extra}{Path(source).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    path = config.cache_dir() / kind / f"{name}-{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        pass
    arrays = decode()
    try:  # an unwritable cache only costs time
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass
    return arrays
