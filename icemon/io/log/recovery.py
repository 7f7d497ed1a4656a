"""Logs whose writer died: HDF5's "open for write" mark, file locks, truncated copies.

A writer killed without closing leaves HDF5's "open for SWMR write" mark in the
superblock, which makes plain HDF5 (and h5py) refuse to open the file. Re-opening it with
:class:`~icemon.io.log.writer.LogWriter` clears that mark (what ``h5clear -s`` does) once
it has checked that the process recorded as the writer is gone, and appends after the
last complete frame. A reader meeting a writer that is setting up (lock held, bytes not yet
flushed) retries (:class:`Busy`).
"""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

import h5py

from icemon.io.log.schema import LogError


def lock_message(path: Path) -> str | None:
    """Why ``path`` cannot be opened if another process holds HDF5's lock on it, else None."""
    try:
        h5py.File(path, "r").close()
    except OSError as exc:
        if locked(exc):
            return (f"{str(path)!r} is locked (HDF5 file lock) by a process that holds it "
                    "open for writing without SWMR mode; icemon's writers switch to SWMR "
                    f"within a second, so another program holds it ({exc})")
    return None


class Busy(Exception):
    """A log a writer is setting up right now (lock held or not all bytes flushed)."""


def locked(exc: OSError) -> bool:
    """Whether an h5py open failed on another process's file lock."""
    return exc.errno == errno.EAGAIN or "lock" in str(exc).lower()


def superblock(path: str | Path) -> bytes | None:
    """The 48 bytes of a version 2/3 HDF5 superblock with 8-byte addresses at offset 0
    (what icemon writes), or None for anything else. Bytes 11: file-consistency flags,
    28–36: end-of-file address, 44–48: checksum."""
    with open(path, "rb") as fh:
        head = fh.read(48)
    if len(head) == 48 and head[:8] == b"\x89HDF\r\n\x1a\n" and head[8] in (2, 3) \
            and head[9] == 8:
        return head
    return None


def open_for_writing(path: str | Path) -> bool:
    """Whether a writer holds the log open (or was killed without closing it)."""
    head = superblock(path)
    return head is not None and head[11] != 0


def check_not_truncated(path: Path) -> None:
    """Compare the file size with the end-of-file address in the superblock (a log still
    marked open for writing may be mid-flush: :class:`Busy`, retried)."""
    head = superblock(path)
    if head is not None:
        eof = int.from_bytes(head[28:36], "little")
        size = path.stat().st_size
        if size < eof:
            message = f"{str(path)!r} is truncated: {size} bytes of {eof}"
            if head[11] != 0:
                raise Busy(message + " (marked open for writing: a copy of a live log, or "
                            "a writer killed mid-write)")
            raise LogError(message)


def _lookup3(data: bytes) -> int:
    """Bob Jenkins' lookup3 hash, HDF5's metadata checksum (H5_checksum_lookup3, seed 0)."""
    m = 0xFFFFFFFF

    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & m

    n = len(data)
    a = b = c = (0xDEADBEEF + n) & m
    k = 0
    while n > 12:
        a = (a + int.from_bytes(data[k:k + 4], "little")) & m
        b = (b + int.from_bytes(data[k + 4:k + 8], "little")) & m
        c = (c + int.from_bytes(data[k + 8:k + 12], "little")) & m
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m
        n -= 12
        k += 12
    if n == 0:
        return c
    tail = data[k:] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - rot(b, 14)) & m
    a ^= c; a = (a - rot(c, 11)) & m
    b ^= a; b = (b - rot(a, 25)) & m
    c ^= b; c = (c - rot(b, 16)) & m
    a ^= c; a = (a - rot(c, 4)) & m
    b ^= a; b = (b - rot(a, 14)) & m
    c ^= b; c = (c - rot(b, 24)) & m
    return c


def clear_write_mark(path: str | Path) -> None:
    """Clear the superblock's "open for (SWMR) write" flags left by a killed writer,
    like ``h5clear -s``. Only version 2/3 superblocks at offset 0 (what icemon writes);
    the stored checksum is verified before anything is changed."""
    head = superblock(path)
    if head is None:
        raise LogError(f"{str(path)!r}: unexpected HDF5 superblock; clear it with "
                       "'h5clear -s' before appending")
    with open(path, "r+b") as fh:
        if int.from_bytes(head[44:48], "little") != _lookup3(head[:44]):
            raise LogError(f"{str(path)!r}: superblock checksum mismatch; not touching it")
        fixed = head[:11] + b"\x00" + head[12:44]
        fh.seek(0)
        fh.write(fixed + _lookup3(fixed).to_bytes(4, "little"))
        fh.flush()
        os.fsync(fh.fileno())


def writer_state(record: dict) -> str:
    """"alive", "gone" (its process no longer runs on this host) or "unseen" (another host,
    or no record) for a log's ``writer`` attribute (JSON {"host", "pid"})."""
    if record.get("host") != socket.gethostname() or not record.get("pid"):
        return "unseen"
    try:
        os.kill(int(record["pid"]), 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass
    return "alive"


def recorded_writer(path: Path) -> dict:
    """The log's ``writer`` attribute ({"host", "pid"}; {} when unreadable or absent)."""
    try:
        with h5py.File(path, "r", swmr=True, libver="latest") as f:
            return json.loads(f.attrs.get("writer", "{}"))
    except (OSError, ValueError):
        return {}


def check_writer_gone(path: Path) -> None:
    """Raise :class:`LogError` unless the process recorded as writing the log marked open
    is known to be gone: alive on this host, or on another host (whose processes this
    host cannot see: two jobs on a shared file system must not write one log), it is
    refused. A log recording no writer (older logs) is taken as abandoned."""
    writer = recorded_writer(path)
    state = writer_state(writer) if writer else "gone"
    who = f"pid {writer.get('pid')} on host {writer.get('host')!r}"
    if state == "alive":
        raise LogError(f"{str(path)!r} is being written by {who}; refusing to write to it "
                       "at the same time")
    if state == "unseen":
        raise LogError(f"{str(path)!r} is marked as being written by {who}, and this host "
                       f"({socket.gethostname()!r}) cannot tell whether that process still "
                       "runs: two jobs writing one log would corrupt it. If that job has "
                       f"ended (e.g. its node failed), run 'icemon unlock {path}' and start "
                       "again; else write to another log")


def shared_filesystem(path: str | Path, mounts: str | Path = "/proc/mounts") -> str | None:
    """The file system type of ``path``'s directory if it is a network file system on
    which HDF5's SWMR reading is not safe (NFS, SMB/CIFS, sshfs...), else None. Read from
    the mount table (Linux); None where it cannot be read."""
    try:
        table = Path(mounts).read_text()
    except OSError:
        return None
    where = os.path.realpath(Path(path).parent)
    best, kind = "", None
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind if kind is not None and kind.split(".")[-1] in NETWORK_FILESYSTEMS else None


NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "sshfs", "9p", "afs",
                       "davfs", "glusterfs"}
"""File system types without the POSIX write ordering SWMR readers rely on (HDF5 does not
support SWMR on NFS); parallel file systems that give it (Lustre, GPFS) are not listed."""
