"""Real back ends for the runner tests, each started once per session on this machine."""

from __future__ import annotations

import getpass
import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from hookline.processes import die_with_parent
from hookline.stack import free_port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:g}s")


@dataclass(frozen=True)
class Sshd:
    port: int
    username: str
    known_hosts: Path
    client_key: Path
    stranger_known_hosts: Path  # the same address with another host key


@contextmanager
def sshd(base: Path) -> Iterator[Sshd]:
    """OpenSSH's sshd on a loopback port with a generated host key, admitting one generated
    user key for the current user; `AcceptEnv HOOKLINE_*` as the runner docs ask, and
    `DEMO_*` for the demo agent's own variables."""
    port = free_port()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    other_key = asyncssh.generate_private_key("ssh-ed25519")
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(str(base / "host_key"))
    user_key.write_private_key(str(base / "user_key"))
    (base / "host_key").chmod(0o600)
    (base / "user_key").chmod(0o600)
    (base / "authorized_keys").write_bytes(user_key.export_public_key())
    entry = f"[127.0.0.1]:{port} "
    (base / "known_hosts").write_text(entry + host_key.export_public_key().decode())
    (base / "stranger_known_hosts").write_text(entry + other_key.export_public_key().decode())
    (base / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\nPidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "AcceptEnv HOOKLINE_* DEMO_*\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    sshd_bin = shutil.which("sshd", path="/usr/sbin:/usr/bin") or "/usr/sbin/sshd"
    proc = subprocess.Popen(die_with_parent([sshd_bin, "-D", "-e", "-f", str(base / "sshd_config")], signal.SIGTERM))
    try:
        wait_for_port(port, proc)
        yield Sshd(port, getpass.getuser(), base / "known_hosts", base / "user_key", base / "stranger_known_hosts")
    finally:
        proc.terminate()
        proc.wait(10)


ROOT = Path(__file__).resolve().parents[3]
CONTAINERS_CONF = ROOT / "hookline" / "containers.conf"
TEST_IMAGE = "localhost/hookline-test:busybox"


@dataclass(frozen=True)
class Podman:
    url: str
    image: str
    command: tuple[str, ...]  # `podman` with this service's storage, for the tests' own checks


def busybox_rootfs(tarball: Path) -> None:
    """A minimal image: Debian's static busybox and its applets, nothing else."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox is not installed (Debian package busybox-static; make system-deps)")
    with tarfile.open(tarball, "w") as tar:
        for folder in ("bin", "tmp", "etc", "work"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, "bin/busybox")
        for applet in ("sh", "cat", "echo", "sleep", "yes", "head", "id", "env", "ls", "printf", "touch", "pwd"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))


@contextmanager
def podman_service(base: Path) -> Iterator[Podman]:
    """`podman system service` (Docker Engine API) with storage of its own under `base`, runc
    per hookline/containers.conf, and the busybox test image imported (no registry needed)."""
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    # Podman refuses a runroot of more than 50 characters (a pytest-xdist worker's base is longer).
    runroot = Path(tempfile.mkdtemp(prefix="hookline-podman-"))
    podman = ("podman", "--root", str(base / "storage"), "--runroot", str(runroot))
    socket_path = base / "podman.sock"
    busybox_rootfs(base / "rootfs.tar")
    imported = subprocess.run([*podman, "import", str(base / "rootfs.tar"), TEST_IMAGE], env=env, capture_output=True)
    if imported.returncode != 0:
        raise RuntimeError(f"podman import failed ({imported.returncode}): {imported.stderr.decode(errors='replace')}")
    proc = subprocess.Popen(
        die_with_parent([*podman, "system", "service", "--time=0", f"unix://{socket_path}"], signal.SIGTERM), env=env
    )
    try:
        deadline = time.monotonic() + 30
        while not socket_path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not start (exit code {proc.poll()})")
            time.sleep(0.05)
        yield Podman(f"unix://{socket_path}", TEST_IMAGE, podman)
    finally:
        proc.terminate()
        proc.wait(20)
        subprocess.run([*podman, "system", "reset", "--force"], env=env, capture_output=True)
        shutil.rmtree(runroot, ignore_errors=True)
