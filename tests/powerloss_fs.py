"""A FUSE file system that forgets what was not fsynced, after Jepsen's LazyFS.

Everything lives in memory. Each file keeps two copies of its bytes: what processes
see, and what the last ``fsync``/``fdatasync`` made durable. Each directory keeps two
name tables: the current one, and the one its last ``fsync`` of the directory made
durable; a create, rename or unlink (of a file or a directory) survives only once its
directory is fsynced. A *power cut* throws away everything volatile: every directory
goes back to its durable names, every file to its durable bytes, and files reachable
only through names that were never made durable vanish.

Run as ``python powerloss_fs.py MOUNTPOINT``. It prints ``ready`` once mounted and reads
commands from standard input, one a line, answering each on standard output:

- ``cut``: the power cut (the writers must be dead already, as they would be);
- ``stats``: counts of writes, file fsyncs, directory fsyncs and cuts so far.

The kernel must not remember what the file system forgot, so the mount uses direct
I/O and no attribute or name caching. Unmount with ``fusermount3 -u``.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import mfusepy


@dataclass(eq=False)
class Node:
    is_dir: bool
    mode: int
    data: bytearray = field(default_factory=bytearray)
    durable: bytes = b""
    entries: dict[str, Node] = field(default_factory=dict)
    durable_entries: dict[str, Node] = field(default_factory=dict)
    mtime: int = field(default_factory=time.time_ns)


def _fail(code: int) -> mfusepy.FuseOSError:
    return mfusepy.FuseOSError(code)


class PowerLossFS(mfusepy.Operations):
    use_ns = True

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.root = Node(True, stat.S_IFDIR | 0o755)
        self.handles: dict[int, Node] = {}
        self.next_fh = 1
        self.counts = {"writes": 0, "fsyncs": 0, "dir_fsyncs": 0, "cuts": 0}

    # ---- the power cut --------------------------------------------------------------

    def cut(self) -> None:
        with self.mutex:
            seen: set[int] = set()

            def restore(node: Node) -> None:
                if id(node) in seen:
                    return
                seen.add(id(node))
                if node.is_dir:
                    node.entries = dict(node.durable_entries)
                    for child in node.entries.values():
                        restore(child)
                else:
                    node.data = bytearray(node.durable)

            restore(self.root)
            self.handles.clear()
            self.counts["cuts"] += 1

    # ---- lookups --------------------------------------------------------------------

    def _walk(self, path: str) -> Node:
        node = self.root
        for part in path.split("/"):
            if not part:
                continue
            if not node.is_dir:
                raise _fail(errno.ENOTDIR)
            nxt = node.entries.get(part)
            if nxt is None:
                raise _fail(errno.ENOENT)
            node = nxt
        return node

    def _parent(self, path: str) -> tuple[Node, str]:
        head, name = os.path.split(path.rstrip("/"))
        parent = self._walk(head)
        if not parent.is_dir:
            raise _fail(errno.ENOTDIR)
        return parent, name

    def _node(self, path: str | None, fh: int | None) -> Node:
        if fh is not None and fh in self.handles:
            return self.handles[fh]
        if path is None:
            raise _fail(errno.EBADF)
        return self._walk(path)

    def _open_handle(self, node: Node) -> int:
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = node
        return fh

    # ---- attributes -----------------------------------------------------------------

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        with self.mutex:
            node = self._node(path, fh)
            return {
                "st_mode": node.mode,
                "st_nlink": 2 if node.is_dir else 1,
                "st_size": 0 if node.is_dir else len(node.data),
                "st_uid": os.getuid(),
                "st_gid": os.getgid(),
                "st_atime": node.mtime,
                "st_mtime": node.mtime,
                "st_ctime": node.mtime,
            }

    def chmod(self, path: str, mode: int) -> int:
        with self.mutex:
            node = self._walk(path)
            node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
            return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        with self.mutex:
            self._walk(path).mtime = times[1] if times else time.time_ns()
            return 0

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1 << 20, "f_bfree": 1 << 19, "f_bavail": 1 << 19}

    # ---- directories ----------------------------------------------------------------

    def readdir(self, path: str, fh: int) -> list[str]:
        with self.mutex:
            node = self._walk(path)
            if not node.is_dir:
                raise _fail(errno.ENOTDIR)
            return [".", "..", *node.entries]

    def mkdir(self, path: str, mode: int) -> int:
        with self.mutex:
            parent, name = self._parent(path)
            if name in parent.entries:
                raise _fail(errno.EEXIST)
            parent.entries[name] = Node(True, stat.S_IFDIR | (mode & 0o7777))
            return 0

    def rmdir(self, path: str) -> int:
        with self.mutex:
            parent, name = self._parent(path)
            node = parent.entries.get(name)
            if node is None:
                raise _fail(errno.ENOENT)
            if not node.is_dir:
                raise _fail(errno.ENOTDIR)
            if node.entries:
                raise _fail(errno.ENOTEMPTY)
            del parent.entries[name]
            return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        with self.mutex:
            node = self._walk(path)
            node.durable_entries = dict(node.entries)
            self.counts["dir_fsyncs"] += 1
            return 0

    # ---- files ----------------------------------------------------------------------

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        with self.mutex:
            parent, name = self._parent(path)
            node = parent.entries.get(name)
            if node is None:
                node = Node(False, stat.S_IFREG | (mode & 0o7777))
                parent.entries[name] = node
            elif node.is_dir:
                raise _fail(errno.EISDIR)
            return self._open_handle(node)

    def open(self, path: str, flags: int) -> int:
        with self.mutex:
            node = self._walk(path)
            if node.is_dir:
                raise _fail(errno.EISDIR)
            if flags & os.O_TRUNC:
                node.data.clear()
            return self._open_handle(node)

    def release(self, path: str | None, fh: int) -> int:
        with self.mutex:
            self.handles.pop(fh, None)
            return 0

    def flush(self, path: str | None, fh: int) -> int:
        return 0

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        with self.mutex:
            return bytes(self._node(path, fh).data[offset : offset + size])

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        with self.mutex:
            buf = self._node(path, fh).data
            if offset > len(buf):
                buf.extend(bytes(offset - len(buf)))
            buf[offset : offset + len(data)] = data
            self.counts["writes"] += 1
            return len(data)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        with self.mutex:
            buf = self._node(path, fh).data
            if length < len(buf):
                del buf[length:]
            else:
                buf.extend(bytes(length - len(buf)))
            return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        with self.mutex:
            node = self._node(path, fh)
            node.durable = bytes(node.data)
            self.counts["fsyncs"] += 1
            return 0

    def unlink(self, path: str) -> int:
        with self.mutex:
            parent, name = self._parent(path)
            node = parent.entries.get(name)
            if node is None:
                raise _fail(errno.ENOENT)
            if node.is_dir:
                raise _fail(errno.EISDIR)
            del parent.entries[name]
            return 0

    def rename(self, old: str, new: str) -> int:
        with self.mutex:
            src, sname = self._parent(old)
            dst, dname = self._parent(new)
            node = src.entries.get(sname)
            if node is None:
                raise _fail(errno.ENOENT)
            target = dst.entries.get(dname)
            if target is not None and target.is_dir and target.entries:
                raise _fail(errno.ENOTEMPTY)
            del src.entries[sname]
            dst.entries[dname] = node
            return 0

    # ---- mount ----------------------------------------------------------------------

    def init(self, path: str) -> None:
        print("ready", flush=True)


def _commands(fs: PowerLossFS) -> None:
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "cut":
            fs.cut()
            print("cut", flush=True)
        elif cmd == "stats":
            with fs.mutex:
                print(" ".join(f"{k}={v}" for k, v in fs.counts.items()), flush=True)


def main() -> None:
    mountpoint = sys.argv[1]
    fs = PowerLossFS()
    threading.Thread(target=_commands, args=(fs,), daemon=True).start()
    mfusepy.FUSE(
        fs,
        mountpoint,
        foreground=True,
        nothreads=True,
        direct_io=True,
        hard_remove=True,
        entry_timeout=0,
        attr_timeout=0,
        negative_timeout=0,
        fsname="powerloss",
    )


if __name__ == "__main__":
    main()
