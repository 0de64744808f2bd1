"""The tree walk of ``ppsize compare``'s scan (ppsize/compare/scan.py), in one nogil loop.

``TreeWalk`` does what ``find TREE -type f`` does per directory: open(2) it
(O_DIRECTORY), readdir(3) through fdopendir (getdents64), and fstatat(2) each entry
relative to the directory's fd (AT_SYMLINK_NOFOLLOW; d_type tells symbolic links
apart without one), as fts(3) does for find. Nothing is kept per file but its size
(an int64 array) and, for the files the workload may map (a library, an executable,
the 1-in-32 CRC sample), its path. The rules are those of the Python walk in
ppsize/compare/scan.py (``_walk_py``, the reference the tests compare this with):
the same sizes in the same order, the same picks, the same skips and examples.

Errors are never fatal: each is counted by reason (the indices of
``ppsize.compare.scan.SKIP_REASONS``), with the first few paths.

Plain C (no C++ runtime: CI may have no g++): the lists are growable malloc/realloc
buffers (``Buf``), the inodes seen an open-addressing hash set (``DevInoSet``); a
failed allocation stops the walk and raises MemoryError, and __dealloc__ frees all.
"""
cimport cython
cimport libc.errno as cerrno
from libc.errno cimport ENOENT, EACCES, EPERM
from libc.stdint cimport int64_t, uint64_t, uint32_t, uint8_t, SIZE_MAX, INT64_MAX
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, strlen

import numpy as np

cdef extern from "<dirent.h>" nogil:
    ctypedef struct DIR
    struct dirent:
        unsigned char d_type
        char d_name[256]
    DIR* fdopendir(int fd)
    dirent* readdir(DIR* d)
    int closedir(DIR* d)
    enum:
        DT_LNK
        DT_UNKNOWN

cdef extern from "<fcntl.h>" nogil:
    int open(const char* path, int flags)
    enum:
        O_RDONLY
        O_DIRECTORY
        O_CLOEXEC
        AT_SYMLINK_NOFOLLOW

cdef extern from "<unistd.h>" nogil:
    int close(int fd)

cdef extern from "<sys/stat.h>" nogil:
    ctypedef unsigned long dev_t
    ctypedef unsigned long ino_t
    ctypedef unsigned long nlink_t
    ctypedef unsigned int mode_t
    ctypedef long off_t
    struct stat:
        dev_t st_dev
        ino_t st_ino
        nlink_t st_nlink
        mode_t st_mode
        off_t st_size
    int fstatat(int dirfd, const char* path, stat* buf, int flags)
    bint S_ISREG(mode_t m)
    bint S_ISDIR(mode_t m)
    bint S_ISLNK(mode_t m)

# reason indices: the order of ppsize.compare.scan.SKIP_REASONS
cdef enum:
    R_SYMLINK = 0
    R_HARDLINK = 1
    R_SPECIAL = 2
    R_OTHER_FS = 3
    R_VANISHED = 4
    R_UNREADABLE_DIR = 5
    R_PERMISSION = 6
    R_ERROR = 7
    NR_REASONS = 8
    NR_EXAMPLES = 5        # paths kept per reason
    NR_EX_SLOTS = 40       # NR_REASONS * NR_EXAMPLES

# what a picked file is (the lists of ScanResult)
cdef enum:
    PICK_LIB = 0
    PICK_EXE = 1
    PICK_DATA = 2

cdef uint32_t CRC_TABLE[256]


cdef void _crc_init() noexcept nogil:
    """The table of zlib's CRC-32 (reflected polynomial 0xEDB88320)."""
    cdef uint32_t c, n, k
    for n in range(256):
        c = n
        for k in range(8):
            c = (<uint32_t>0xEDB88320 ^ (c >> 1)) if c & 1 else c >> 1
        CRC_TABLE[n] = c


_crc_init()


cdef inline uint32_t _crc32(const char* p, size_t n) noexcept nogil:
    """zlib.crc32(bytes) (the data sample's choice: a path's hash, not its listing order)."""
    cdef uint32_t c = <uint32_t>0xffffffff
    cdef size_t i
    for i in range(n):
        c = CRC_TABLE[(c ^ <uint8_t>p[i]) & 0xff] ^ (c >> 8)
    return c ^ <uint32_t>0xffffffff


cdef inline bint _ends_so(const char* s, size_t n) noexcept nogil:
    return n >= 3 and s[n - 3] == b'.' and s[n - 2] == b's' and s[n - 1] == b'o'


cdef bint _is_lib_at(const char* s, size_t n) noexcept nogil:
    """re.search(r"\\.so(\\.[0-9]+)*$") on s[:n] ending at n: strip trailing
    ".<digits>" groups one at a time (digits hold no dot: the split is unique), a
    ".so" before any of them is a match."""
    cdef size_t j
    while True:
        if _ends_so(s, n):
            return True
        j = n
        while j > 0 and b'0' <= s[j - 1] <= b'9':
            j -= 1
        if j == n or j == 0 or s[j - 1] != b'.':
            return False
        n = j - 1


cdef bint _is_lib(const char* s, size_t n) noexcept nogil:
    """ppsize.compare.scan._is_lib on a name's bytes; Python's ``$`` also matches
    before a final newline."""
    if _is_lib_at(s, n):
        return True
    return n > 0 and s[n - 1] == b'\n' and _is_lib_at(s, n - 1)


# ---- growable buffers (what std::vector / std::string were) ----

cdef struct Buf:
    char* p
    size_t len          # bytes used
    size_t cap          # bytes allocated


cdef int _reserve(Buf* b, size_t more) noexcept nogil:
    """Room for ``more`` bytes past b.len; -1 (b unchanged) if that overflows or
    realloc fails."""
    cdef size_t need, cap
    cdef char* p
    if more <= b.cap - b.len:
        return 0
    if more > SIZE_MAX - b.len:
        return -1
    need = b.len + more
    cap = b.cap * 2 if b.cap <= SIZE_MAX // 2 else need
    if cap < need:
        cap = need
    if cap < 64:
        cap = 64
    p = <char*>realloc(b.p, cap)
    if p == NULL:
        return -1
    b.p = p
    b.cap = cap
    return 0


cdef inline int _append(Buf* b, const void* src, size_t n) noexcept nogil:
    if _reserve(b, n) < 0:
        return -1
    memcpy(b.p + b.len, src, n)
    b.len += n
    return 0


cdef inline int _push_u64(Buf* b, uint64_t v) noexcept nogil:
    if _reserve(b, sizeof(uint64_t)) < 0:
        return -1
    (<uint64_t*>(b.p + b.len))[0] = v
    b.len += sizeof(uint64_t)
    return 0


cdef inline int _push_i64(Buf* b, int64_t v) noexcept nogil:
    return _push_u64(b, <uint64_t>v)


cdef inline uint64_t _u64_at(const Buf* b, size_t i) noexcept nogil:
    return (<const uint64_t*>b.p)[i]


cdef inline void _buf_free(Buf* b) noexcept nogil:
    free(b.p)
    b.p = NULL
    b.len = b.cap = 0


# ---- a set of (st_dev, st_ino): membership only (what std::set<pair> was) ----

cdef struct DevInoSet:
    uint64_t* keys      # dev, ino per slot
    uint8_t* used
    size_t cap          # slots: 0 or a power of two, at most half full
    size_t n


cdef inline size_t _slot(uint64_t dev, uint64_t ino, size_t mask) noexcept nogil:
    cdef uint64_t h = ino * <uint64_t>0x9E3779B97F4A7C15ULL ^ dev * <uint64_t>0xC2B2AE3D27D4EB4FULL
    return <size_t>(h ^ (h >> 29)) & mask


cdef int _set_grow(DevInoSet* s) noexcept nogil:
    cdef size_t cap = s.cap * 2 if s.cap else 1024
    cdef size_t i, k
    cdef uint64_t* keys
    cdef uint8_t* used
    if cap < s.cap or cap > SIZE_MAX // (2 * sizeof(uint64_t)):
        return -1
    keys = <uint64_t*>malloc(cap * 2 * sizeof(uint64_t))
    used = <uint8_t*>calloc(cap, 1)
    if keys == NULL or used == NULL:
        free(keys)
        free(used)
        return -1
    for i in range(s.cap):
        if s.used[i]:
            k = _slot(s.keys[2 * i], s.keys[2 * i + 1], cap - 1)
            while used[k]:
                k = (k + 1) & (cap - 1)
            used[k] = 1
            keys[2 * k] = s.keys[2 * i]
            keys[2 * k + 1] = s.keys[2 * i + 1]
    free(s.keys)
    free(s.used)
    s.keys = keys
    s.used = used
    s.cap = cap
    return 0


cdef int _set_insert(DevInoSet* s, uint64_t dev, uint64_t ino) noexcept nogil:
    """1 if (dev, ino) is new (now added), 0 if it was there, -1 out of memory."""
    cdef size_t k
    if s.cap:
        k = _slot(dev, ino, s.cap - 1)
        while s.used[k]:
            if s.keys[2 * k] == dev and s.keys[2 * k + 1] == ino:
                return 0
            k = (k + 1) & (s.cap - 1)
    if 2 * (s.n + 1) > s.cap and _set_grow(s) < 0:
        return -1
    k = _slot(dev, ino, s.cap - 1)
    while s.used[k]:
        k = (k + 1) & (s.cap - 1)
    s.used[k] = 1
    s.keys[2 * k] = dev
    s.keys[2 * k + 1] = ino
    s.n += 1
    return 1


cdef void _set_free(DevInoSet* s) noexcept nogil:
    free(s.keys)
    free(s.used)
    s.keys = NULL
    s.used = NULL
    s.cap = s.n = 0


cdef class TreeWalk:
    """One scan's walk state: a stack of directories to list, the inodes seen, and
    what was found. ``push(path, dev)`` a tree root (in reverse of the order to walk),
    ``step(budget)`` walks (nogil) until about ``budget`` entries were read or the
    stack is empty (returns False then), and the properties give the results.
    Out of memory, ``step`` (and ``push``, ``see_*``) raise MemoryError; the walk is
    then unusable (every later ``step`` raises too)."""
    # the stack: NUL-terminated paths back to back, the end of each (after its NUL), its st_dev
    cdef Buf stack_path
    cdef Buf stack_end               # uint64 offsets into stack_path
    cdef Buf stack_dev               # uint64
    cdef size_t stack_n
    # one directory's subdirectories, pushed onto the stack in reverse once it is listed
    cdef Buf sub_path
    cdef Buf sub_end
    cdef Buf sub_dev
    cdef Buf cur                     # the directory's path, then "dir/name" per entry
    cdef DevInoSet seen              # (st_dev, st_ino) of files that may recur
    cdef DevInoSet dirs_seen
    cdef Buf added_files             # (st_dev, st_ino) uint64 pairs the walk added to seen
    cdef Buf added_dirs              # ... and to dirs_seen (not see_*: the walk's own finds)
    cdef Buf sizes_v                 # int64
    cdef Buf pick_kind               # uint8
    cdef Buf pick_idx                # int64
    cdef Buf pick_size               # int64
    cdef Buf pick_end                # uint64: end offset of each picked path in pick_paths
    cdef Buf pick_paths
    cdef int64_t counts[NR_REASONS]
    cdef Buf ex_paths[NR_REASONS]    # the example paths of a reason, back to back
    cdef size_t ex_end[NR_EX_SLOTS]  # [reason * NR_EXAMPLES + k]: end of example k
    cdef int ex_n[NR_REASONS]
    cdef readonly int64_t dirs
    cdef readonly int64_t entries
    cdef bint cross_mounts
    cdef bint single                 # a tree is a file: every inode checked
    cdef bint oom                    # an allocation failed: the results are incomplete
    cdef int64_t base                # file indices start here (the root files before)
    cdef int64_t dir_stop            # _walk lists no directory once dirs reaches this

    def __cinit__(self, bint cross_mounts=False, bint single=False, int64_t base=0):
        # tp_alloc zeroed every C field: all buffers and sets start empty (NULL)
        self.cross_mounts = cross_mounts
        self.single = single
        self.base = base
        self.dir_stop = INT64_MAX

    def __dealloc__(self):
        cdef int r
        _buf_free(&self.stack_path)
        _buf_free(&self.stack_end)
        _buf_free(&self.stack_dev)
        _buf_free(&self.sub_path)
        _buf_free(&self.sub_end)
        _buf_free(&self.sub_dev)
        _buf_free(&self.cur)
        _buf_free(&self.sizes_v)
        _buf_free(&self.pick_kind)
        _buf_free(&self.pick_idx)
        _buf_free(&self.pick_size)
        _buf_free(&self.pick_end)
        _buf_free(&self.pick_paths)
        for r in range(NR_REASONS):
            _buf_free(&self.ex_paths[r])
        _set_free(&self.seen)
        _set_free(&self.dirs_seen)
        _buf_free(&self.added_files)
        _buf_free(&self.added_dirs)

    cdef int _check(self) except -1:
        if self.oom:
            raise MemoryError(f"TreeWalk: out of memory after {self.entries} entries, {self.dirs} directories")
        return 0

    def see_file(self, uint64_t dev, uint64_t ino):
        """Note a file inode counted already (a tree that is a file)."""
        self._check()
        if _set_insert(&self.seen, dev, ino) < 0:
            self.oom = True
            self._check()

    def see_dir(self, uint64_t dev, uint64_t ino):
        """Note a directory inode (a tree root); False if it was seen already."""
        self._check()
        cdef int r = _set_insert(&self.dirs_seen, dev, ino)
        if r < 0:
            self.oom = True
            self._check()
        return r == 1

    def push(self, bytes path, uint64_t dev):
        """Put a tree root on the stack."""
        self._check()
        if self._push_dir(path, len(path), dev) < 0:
            self.oom = True
            self._check()

    cdef int _push_dir(self, const char* p, size_t n, uint64_t dev) noexcept nogil:
        """Onto the stack: path p[:n] and its st_dev; -1 (stack unchanged) out of memory."""
        cdef size_t len0 = self.stack_path.len, end0 = self.stack_end.len
        if (_reserve(&self.stack_path, n + 1) < 0 or _push_u64(&self.stack_end, len0 + n + 1) < 0
                or _push_u64(&self.stack_dev, dev) < 0):
            self.stack_end.len = end0
            return -1
        memcpy(self.stack_path.p + len0, p, n)
        self.stack_path.p[len0 + n] = 0
        self.stack_path.len = len0 + n + 1
        self.stack_n += 1
        return 0

    cdef void _skip(self, int reason, const char* p, size_t n) noexcept nogil:
        cdef int k = self.ex_n[reason]
        self.counts[reason] += 1
        if k < NR_EXAMPLES:
            if _append(&self.ex_paths[reason], p, n) < 0:
                self.oom = True
                return
            self.ex_end[reason * NR_EXAMPLES + k] = self.ex_paths[reason].len
            self.ex_n[reason] = k + 1

    cdef void _pick(self, const char* p, size_t n, size_t name_at, int64_t size, mode_t mode) noexcept nogil:
        """A file the workload may map: a library, an executable, or the 1-in-32 sample."""
        cdef uint8_t kind
        cdef size_t kind0 = self.pick_kind.len, idx0 = self.pick_idx.len
        cdef size_t size0 = self.pick_size.len, paths0 = self.pick_paths.len
        if _is_lib(p + name_at, n - name_at):
            kind = PICK_LIB
        elif mode & 0o111:
            kind = PICK_EXE
        elif _crc32(p, n) & 31 == 0:
            kind = PICK_DATA
        else:
            return
        if (_append(&self.pick_kind, &kind, 1) < 0
                or _push_i64(&self.pick_idx, self.base + <int64_t>(self.sizes_v.len // sizeof(int64_t)) - 1) < 0
                or _push_i64(&self.pick_size, size) < 0
                or _append(&self.pick_paths, p, n) < 0
                or _push_u64(&self.pick_end, self.pick_paths.len) < 0):
            self.pick_kind.len = kind0          # all five lists stay the same length
            self.pick_idx.len = idx0
            self.pick_size.len = size0
            self.pick_paths.len = paths0
            self.oom = True

    def step(self, int64_t budget):
        """Walk until about ``budget`` entries were read; False once done."""
        self._check()
        with nogil:
            self._walk(budget)
        self._check()
        return self.stack_n > 0

    def list_dirs(self, int64_t count):
        """Pop and list ``count`` directories (fewer if the stack runs out), as step
        would; the stack's size after."""
        self._check()
        self.dir_stop = self.dirs + count
        with nogil:
            self._walk(INT64_MAX - self.entries)
        self.dir_stop = INT64_MAX
        self._check()
        return self.stack_n

    @property
    def stack_size(self):
        return self.stack_n

    def take_stack(self):
        """[(path bytes, st_dev)] of the directories still to walk, in the order the
        walk would pop them (each a whole subtree of the walk); the stack is left empty."""
        cdef size_t i, start, end
        res = []
        for i in range(self.stack_n):
            start = <size_t>_u64_at(&self.stack_end, i - 1) if i > 0 else 0
            end = <size_t>_u64_at(&self.stack_end, i)
            res.append((self.stack_path.p[start:end - 1], _u64_at(&self.stack_dev, i)))
        res.reverse()
        self.stack_path.len = self.stack_end.len = self.stack_dev.len = 0
        self.stack_n = 0
        return res

    def keys(self, bint dirs=False):
        """(st_dev, st_ino) of every file inode (``dirs``: directory inode) in the set
        the walk looks inodes up in: an (n, 2) uint64 array."""
        cdef DevInoSet* st = &self.dirs_seen if dirs else &self.seen
        out = np.empty((st.n, 2), dtype=np.uint64)
        cdef uint64_t[:, ::1] o = out
        cdef size_t i, j = 0
        for i in range(st.cap):
            if st.used[i]:
                o[j, 0] = st.keys[2 * i]
                o[j, 1] = st.keys[2 * i + 1]
                j += 1
        return out

    def added(self, bint dirs=False):
        """The (st_dev, st_ino) the walk itself added to its file (``dirs``: directory)
        set, in the order found (not those of see_*): an (n, 2) uint64 array."""
        cdef Buf* b = &self.added_dirs if dirs else &self.added_files
        cdef Py_ssize_t n = b.len // (2 * sizeof(uint64_t))
        out = np.empty((n, 2), dtype=np.uint64)
        cdef uint64_t[:, ::1] o = out
        if n:
            memcpy(&o[0, 0], b.p, n * 2 * sizeof(uint64_t))
        return out

    def see_keys(self, const uint64_t[:, ::1] keys, bint dirs=False):
        """see_file (``dirs``: see_dir) for each (st_dev, st_ino) row of ``keys``."""
        self._check()
        cdef DevInoSet* st = &self.dirs_seen if dirs else &self.seen
        cdef Py_ssize_t i
        if keys.shape[0] and keys.shape[1] != 2:
            raise ValueError("keys must be (n, 2): st_dev, st_ino")
        for i in range(keys.shape[0]):
            if _set_insert(st, keys[i, 0], keys[i, 1]) < 0:
                self.oom = True
                self._check()

    @cython.cdivision(True)
    cdef void _walk(self, int64_t budget) noexcept nogil:
        cdef int64_t stop = self.entries + budget
        cdef uint64_t dev
        cdef int fd, err
        cdef DIR* dp
        cdef dirent* ent
        cdef stat st
        cdef size_t dlen, plen, nlen, start, n, j
        cdef const char* name
        cdef Buf* cur = &self.cur
        while self.stack_n > 0 and self.entries < stop and self.dirs < self.dir_stop:
            # pop the top directory into cur (NUL-terminated for open)
            n = self.stack_n
            start = <size_t>_u64_at(&self.stack_end, n - 2) if n > 1 else 0
            dlen = <size_t>_u64_at(&self.stack_end, n - 1) - start - 1
            dev = _u64_at(&self.stack_dev, n - 1)
            cur.len = 0
            if _reserve(cur, dlen + 2 + 256) < 0:   # dir + "/" + name + NUL
                self.oom = True
                return
            memcpy(cur.p, self.stack_path.p + start, dlen + 1)
            self.stack_path.len = start
            self.stack_end.len -= sizeof(uint64_t)
            self.stack_dev.len -= sizeof(uint64_t)
            self.stack_n = n - 1
            self.dirs += 1
            fd = open(cur.p, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd < 0:
                self._skip(R_VANISHED if cerrno.errno == ENOENT else R_UNREADABLE_DIR, cur.p, dlen)
                if self.oom:
                    return
                continue
            dp = fdopendir(fd)
            if dp == NULL:
                self._skip(R_UNREADABLE_DIR, cur.p, dlen)
                close(fd)
                if self.oom:
                    return
                continue
            plen = dlen
            if plen == 0 or cur.p[plen - 1] != b'/':          # as os.path.join(d, name)
                cur.p[plen] = b'/'
                plen += 1
            self.sub_path.len = self.sub_end.len = self.sub_dev.len = 0
            while not self.oom:
                cerrno.errno = 0
                ent = readdir(dp)
                if ent == NULL:
                    if cerrno.errno != 0:                           # readdir failing halfway
                        self._skip(R_UNREADABLE_DIR, cur.p, dlen)
                    break
                name = ent.d_name
                if name[0] == b'.' and (name[1] == 0 or (name[1] == b'.' and name[2] == 0)):
                    continue
                self.entries += 1
                nlen = strlen(name)
                memcpy(cur.p + plen, name, nlen)
                cur.len = plen + nlen
                if ent.d_type == DT_LNK:
                    self._skip(R_SYMLINK, cur.p, cur.len)
                    continue
                if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0:
                    err = cerrno.errno
                    if err == ENOENT:
                        self._skip(R_VANISHED, cur.p, cur.len)
                    elif err == EACCES or err == EPERM:
                        self._skip(R_PERMISSION, cur.p, cur.len)
                    else:
                        self._skip(R_ERROR, cur.p, cur.len)
                    continue
                if S_ISREG(st.st_mode):
                    if st.st_nlink > 1 or self.single:
                        err = _set_insert(&self.seen, st.st_dev, st.st_ino)
                        if err < 0 or (err == 1 and (_push_u64(&self.added_files, st.st_dev) < 0
                                                     or _push_u64(&self.added_files, st.st_ino) < 0)):
                            self.oom = True
                            break
                        if err == 0:
                            self._skip(R_HARDLINK, cur.p, cur.len)
                            continue
                    if _push_i64(&self.sizes_v, st.st_size) < 0:
                        self.oom = True
                        break
                    if st.st_size > 0:
                        self._pick(cur.p, cur.len, plen, st.st_size, st.st_mode)
                elif S_ISDIR(st.st_mode):
                    if st.st_dev != dev and not self.cross_mounts:
                        self._skip(R_OTHER_FS, cur.p, cur.len)
                        continue
                    err = _set_insert(&self.dirs_seen, st.st_dev, st.st_ino)
                    if err < 0 or (err == 1 and (_push_u64(&self.added_dirs, st.st_dev) < 0
                                                 or _push_u64(&self.added_dirs, st.st_ino) < 0)):
                        self.oom = True
                        break
                    if err == 1:
                        if (_append(&self.sub_path, cur.p, cur.len) < 0
                                or _push_u64(&self.sub_end, self.sub_path.len) < 0
                                or _push_u64(&self.sub_dev, st.st_dev) < 0):
                            self.oom = True
                            break
                elif S_ISLNK(st.st_mode):                    # replaced by a link since readdir
                    self._skip(R_SYMLINK, cur.p, cur.len)
                else:
                    self._skip(R_SPECIAL, cur.p, cur.len)
            closedir(dp)                                     # closes fd
            if self.oom:
                return
            n = self.sub_dev.len // sizeof(uint64_t)
            j = n
            while j > 0:                                     # depth first, in listing order
                j -= 1
                start = <size_t>_u64_at(&self.sub_end, j - 1) if j > 0 else 0
                if self._push_dir(self.sub_path.p + start, <size_t>_u64_at(&self.sub_end, j) - start,
                                  _u64_at(&self.sub_dev, j)) < 0:
                    self.oom = True
                    return

    @property
    def nr_files(self):
        return <Py_ssize_t>(self.sizes_v.len // sizeof(int64_t))

    def sizes(self):
        """int64 st_size of each regular file counted, in walk order."""
        cdef Py_ssize_t n = self.sizes_v.len // sizeof(int64_t)
        out = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] o = out
        if n:
            memcpy(&o[0], self.sizes_v.p, n * sizeof(int64_t))
        return out

    def picks(self):
        """[(kind, path bytes, file index, size)]: PICK_LIB 0, PICK_EXE 1, PICK_DATA 2."""
        cdef size_t i, end, start = 0
        cdef const int64_t* idx = <const int64_t*>self.pick_idx.p
        cdef const int64_t* size = <const int64_t*>self.pick_size.p
        res = []
        for i in range(self.pick_kind.len):
            end = <size_t>_u64_at(&self.pick_end, i)
            res.append((<uint8_t>self.pick_kind.p[i], self.pick_paths.p[start:end], idx[i], size[i]))
            start = end
        return res

    def skipped(self):
        """[(count, [example path bytes])] per reason index."""
        cdef int r, k
        cdef size_t start, end
        res = []
        for r in range(NR_REASONS):
            ex = []
            start = 0
            for k in range(self.ex_n[r]):
                end = self.ex_end[r * NR_EXAMPLES + k]
                ex.append(self.ex_paths[r].p[start:end])
                start = end
            res.append((self.counts[r], ex))
        return res
