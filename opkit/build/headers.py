"""ONNX Runtime's C/C++ headers, which the onnxruntime wheel does not ship.

Order: $OPKIT_ORT_INCLUDE_DIR (a user's own headers) -> the per-user cache -> the pinned
Debian package libonnxruntime-dev 1.21.0 (checksum-pinned) from the mirror the machine's apt
configuration names -> the suite's current package via apt-get (apt checks the signatures)
-> /usr/include/onnxruntime. 1.21 is the oldest runtime opkit supports, so a library built
against these headers loads in every onnxruntime that opkit allows.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from opkit import ui
from opkit.errors import HeadersError

ENV_VAR = "OPKIT_ORT_INCLUDE_DIR"
PINNED_VERSION = "1.21.0"
PINNED_POOL_PATH = "pool/main/o/onnxruntime/libonnxruntime-dev_1.21.0+dfsg-1_amd64.deb"
PINNED_SIZE = 85_340
PINNED_SHA256 = "14f7d959d5deacbcf1504830d4189f91fc67382b399ed9ae9d3aa9c4050ced08"
REQUIRED = ("onnxruntime_c_api.h", "onnxruntime_cxx_api.h", "onnxruntime_cxx_inline.h", "onnxruntime_float16.h")


@dataclass(frozen=True)
class Headers:
    include_dir: Path
    api_version: int
    source: str


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "opkit"


def api_version(include_dir: Path) -> int:
    text = (include_dir / "onnxruntime_c_api.h").read_text(errors="replace")
    m = re.search(r"#define\s+ORT_API_VERSION\s+(\d+)", text)
    return int(m.group(1)) if m else 0


def _valid(d: Path) -> bool:
    return all((d / f).is_file() for f in REQUIRED)


def _normalise(d: Path) -> Path:
    """Accept a folder that holds the headers, or its parent with an onnxruntime/ subfolder."""
    return d / "onnxruntime" if not _valid(d) and _valid(d / "onnxruntime") else d


def apt_mirrors() -> list[str]:
    """Debian archive URIs named by this machine's apt configuration (security mirrors last)."""
    uris: list[str] = []
    files = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) if Path("/etc/apt/sources.list.d").is_dir() else []
    for f in files:
        for block in f.read_text(errors="replace").split("\n\n"):
            if re.search(r"^Enabled:\s*no", block, re.M | re.I):
                continue
            m = re.search(r"^URIs:\s*(.+)$", block, re.M)
            if m:
                uris.extend(m.group(1).split())
    for f in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))] \
            if Path("/etc/apt").is_dir() else []:
        if f.is_file():
            for line in f.read_text(errors="replace").splitlines():
                m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line)
                if m:
                    uris.append(m.group(1))
    uris = [u for u in dict.fromkeys(uris) if u.startswith(("http://", "https://"))]
    return sorted(uris, key=lambda u: "security" in u)


def _extract_deb(deb: bytes, dest: Path) -> None:
    """Unpack usr/include/onnxruntime/ from a .deb (an ar archive holding data.tar.*)."""
    if not deb.startswith(b"!<arch>\n"):
        raise ValueError("not a .deb (ar) archive")
    pos = 8
    while pos + 60 <= len(deb):
        header = deb[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = deb[pos + 60: pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name.startswith("data.tar"):
            mode = {"data.tar.xz": "r:xz", "data.tar.gz": "r:gz", "data.tar.zst": None}.get(name, "r:*")
            if mode is None:
                raise ValueError("data.tar.zst is not supported by Python's tarfile")
            with tarfile.open(fileobj=io.BytesIO(body), mode=mode) as tar:
                dest.mkdir(parents=True, exist_ok=True)
                for member in tar.getmembers():
                    path = member.name.lstrip("./")
                    if member.isfile() and path.startswith("usr/include/onnxruntime/"):
                        rel = path[len("usr/include/onnxruntime/"):]
                        if ".." in Path(rel).parts:
                            continue
                        out = dest / rel
                        out.parent.mkdir(parents=True, exist_ok=True)
                        out.write_bytes(tar.extractfile(member).read())
            return
    raise ValueError("no data.tar member in the .deb")


def _install(deb: bytes, target: Path) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=".headers-", dir=target.parent))
    try:
        _extract_deb(deb, tmp)
        if not _valid(tmp):
            raise ValueError("the package does not contain the expected headers")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _download_pinned(target: Path, errors: list[str]) -> Path | None:
    for uri in apt_mirrors():
        url = uri.rstrip("/") + "/" + PINNED_POOL_PATH
        try:
            ui.detail(f"downloading libonnxruntime-dev {PINNED_VERSION} from the apt mirror {uri}")
            with urllib.request.urlopen(url, timeout=60) as r:
                data = r.read(PINNED_SIZE + 1)
        except Exception as exc:  # network errors of every kind
            errors.append(f"{url}: {exc}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != PINNED_SIZE or digest != PINNED_SHA256:
            errors.append(f"{url}: checksum mismatch (got {len(data)} bytes, sha256 {digest})")
            continue
        try:
            return _install(data, target)
        except Exception as exc:
            errors.append(f"{url}: {exc}")
    if not apt_mirrors():
        errors.append("no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/")
    return None


def _apt_download(cache: Path, errors: list[str]) -> Path | None:
    """The suite's current libonnxruntime-dev through apt (signed indexes), in a private apt state."""
    apt = shutil.which("apt-get")
    mirrors = [u for u in apt_mirrors() if "security" not in u]
    keyring = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
    if not apt or not mirrors or not keyring.is_file():
        errors.append("apt-get fallback unavailable (needs apt-get, a Debian mirror and the archive keyring)")
        return None
    work = Path(tempfile.mkdtemp(prefix="apt-", dir=cache))
    try:
        (work / "lists" / "partial").mkdir(parents=True)
        (work / "cache" / "archives" / "partial").mkdir(parents=True)
        (work / "sources.list").write_text(f"deb [signed-by={keyring}] {mirrors[0]} trixie main\n")
        opts = [f"-oDir::Etc::SourceList={work / 'sources.list'}", "-oDir::Etc::SourceParts=/dev/null",
                f"-oDir::State::Lists={work / 'lists'}", f"-oDir::Cache={work / 'cache'}",
                "-oAPT::Sandbox::User=root", "-oDebug::NoLocking=1"]
        ui.detail("resolving libonnxruntime-dev through apt (Debian trixie)")
        subprocess.run([apt, *opts, "update"], check=True, capture_output=True, timeout=300)
        subprocess.run([apt, *opts, "download", "libonnxruntime-dev"], check=True, capture_output=True,
                       cwd=work, timeout=300)
        debs = sorted(work.glob("libonnxruntime-dev_*.deb"))
        if not debs:
            raise RuntimeError("apt-get download produced no package")
        version = debs[0].name.split("_")[1].split("+")[0].split("-")[0]
        return _install(debs[0].read_bytes(), cache / f"ort-headers-{version}" / "include")
    except Exception as exc:
        detail = exc.stderr.decode(errors="replace").strip()[-300:] if isinstance(exc, subprocess.CalledProcessError) \
            and exc.stderr else str(exc)
        errors.append(f"apt-get download libonnxruntime-dev: {detail}")
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_headers(*, download: bool = True) -> Headers:
    """Find or fetch the headers; raise HeadersError saying exactly what to do when impossible."""
    env = os.environ.get(ENV_VAR)
    if env:
        d = _normalise(Path(env).expanduser())
        if not _valid(d):
            raise HeadersError(f"${ENV_VAR} does not point at ONNX Runtime's headers", where=env,
                               expected="a folder containing " + ", ".join(REQUIRED),
                               got="missing " + ", ".join(f for f in REQUIRED if not (d / f).is_file()),
                               fix=f"point ${ENV_VAR} at the folder holding onnxruntime_c_api.h, or unset it")
        return Headers(d, api_version(d), f"${ENV_VAR}")
    cache = cache_root()
    pinned = cache / f"ort-headers-{PINNED_VERSION}" / "include"
    if _valid(pinned):
        return Headers(pinned, api_version(pinned), f"cache (libonnxruntime-dev {PINNED_VERSION})")
    for other in sorted(cache.glob("ort-headers-*/include")):
        if _valid(other):
            return Headers(other, api_version(other), f"cache ({other.parent.name})")
    errors: list[str] = []
    if download:
        pinned.parent.mkdir(parents=True, exist_ok=True)
        got = _download_pinned(pinned, errors) or _apt_download(cache, errors)
        if got is not None:
            return Headers(got, api_version(got), "downloaded (libonnxruntime-dev)")
    system = Path("/usr/include/onnxruntime")
    if _valid(system):
        return Headers(system, api_version(system), "system (/usr/include/onnxruntime)")
    raise HeadersError(
        "ONNX Runtime's C/C++ headers are not available (the onnxruntime wheel does not ship them)",
        details="tried:\n" + "\n".join("  - " + e for e in errors) if errors else None,
        fix=f"either `apt-get install libonnxruntime-dev` (Debian/Ubuntu), or download an ONNX Runtime "
            f"release and set {ENV_VAR}=<its include folder>; opkit caches them under {cache}")
