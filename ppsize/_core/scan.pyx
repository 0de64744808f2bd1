# distutils: language = c++
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
"""
cimport cython
cimport libc.errno as cerrno
from libc.errno cimport ENOENT, EACCES, EPERM
from libc.stdint cimport int64_t, uint64_t, uint32_t, uint8_t
from libcpp.pair cimport pair
from libcpp.set cimport set as cset
from libcpp.string cimport string
from libcpp.vector cimport vector

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


ctypedef pair[uint64_t, uint64_t] devino


cdef class TreeWalk:
    """One scan's walk state: a stack of directories to list, the inodes seen, and
    what was found. ``push(path, dev)`` a tree root (in reverse of the order to walk),
    ``step(budget)`` walks (nogil) until about ``budget`` entries were read or the
    stack is empty (returns False then), and the properties give the results."""
    cdef vector[string] stack_path
    cdef vector[uint64_t] stack_dev
    cdef cset[devino] seen          # (st_dev, st_ino) of files that may recur
    cdef cset[devino] dirs_seen
    cdef vector[int64_t] sizes_v
    cdef vector[uint8_t] pick_kind
    cdef vector[int64_t] pick_idx
    cdef vector[int64_t] pick_size
    cdef vector[size_t] pick_end     # end offset of each picked path in pick_paths
    cdef string pick_paths
    cdef int64_t counts[NR_REASONS]
    cdef vector[string] examples[NR_REASONS]
    cdef readonly int64_t dirs
    cdef readonly int64_t entries
    cdef bint cross_mounts
    cdef bint single                 # a tree is a file: every inode checked
    cdef int64_t base                # file indices start here (the root files before)

    def __cinit__(self, bint cross_mounts=False, bint single=False, int64_t base=0):
        self.cross_mounts = cross_mounts
        self.single = single
        self.base = base
        self.dirs = 0
        self.entries = 0
        cdef int r
        for r in range(NR_REASONS):
            self.counts[r] = 0

    def see_file(self, uint64_t dev, uint64_t ino):
        """Note a file inode counted already (a tree that is a file)."""
        self.seen.insert(devino(dev, ino))

    def see_dir(self, uint64_t dev, uint64_t ino):
        """Note a directory inode (a tree root); False if it was seen already."""
        return self.dirs_seen.insert(devino(dev, ino)).second

    def push(self, bytes path, uint64_t dev):
        self.stack_path.push_back(path)
        self.stack_dev.push_back(dev)

    cdef void _skip(self, int reason, const string& path) noexcept nogil:
        self.counts[reason] += 1
        if self.examples[reason].size() < NR_EXAMPLES:
            self.examples[reason].push_back(path)

    cdef void _pick(self, const string& path, size_t name_at, int64_t size, mode_t mode) noexcept nogil:
        """A file the workload may map: a library, an executable, or the 1-in-32 sample."""
        cdef int kind
        cdef const char* p = path.c_str()
        if _is_lib(p + name_at, path.size() - name_at):
            kind = PICK_LIB
        elif mode & 0o111:
            kind = PICK_EXE
        elif _crc32(p, path.size()) & 31 == 0:
            kind = PICK_DATA
        else:
            return
        self.pick_kind.push_back(<uint8_t>kind)
        self.pick_idx.push_back(self.base + <int64_t>self.sizes_v.size() - 1)
        self.pick_size.push_back(size)
        self.pick_paths.append(path)
        self.pick_end.push_back(self.pick_paths.size())

    def step(self, int64_t budget):
        """Walk until about ``budget`` entries were read; False once done."""
        with nogil:
            self._walk(budget)
        return not self.stack_path.empty()

    @cython.cdivision(True)
    cdef void _walk(self, int64_t budget) noexcept nogil:
        cdef int64_t stop = self.entries + budget
        cdef string d, path
        cdef uint64_t dev
        cdef int fd, err
        cdef DIR* dp
        cdef dirent* ent
        cdef stat st
        cdef size_t plen
        cdef const char* name
        cdef vector[string] sub_path
        cdef vector[uint64_t] sub_dev
        cdef Py_ssize_t j
        while not self.stack_path.empty() and self.entries < stop:
            d = self.stack_path.back()
            dev = self.stack_dev.back()
            self.stack_path.pop_back()
            self.stack_dev.pop_back()
            self.dirs += 1
            fd = open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd < 0:
                self._skip(R_VANISHED if cerrno.errno == ENOENT else R_UNREADABLE_DIR, d)
                continue
            dp = fdopendir(fd)
            if dp == NULL:
                self._skip(R_UNREADABLE_DIR, d)
                close(fd)
                continue
            path = d
            if path.empty() or path.back() != b'/':         # as os.path.join(d, name)
                path.push_back(b'/')
            plen = path.size()
            sub_path.clear()
            sub_dev.clear()
            while True:
                cerrno.errno = 0
                ent = readdir(dp)
                if ent == NULL:
                    if cerrno.errno != 0:                           # readdir failing halfway
                        self._skip(R_UNREADABLE_DIR, d)
                    break
                name = ent.d_name
                if name[0] == b'.' and (name[1] == 0 or (name[1] == b'.' and name[2] == 0)):
                    continue
                self.entries += 1
                path.resize(plen)
                path.append(name)
                if ent.d_type == DT_LNK:
                    self._skip(R_SYMLINK, path)
                    continue
                if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0:
                    err = cerrno.errno
                    if err == ENOENT:
                        self._skip(R_VANISHED, path)
                    elif err == EACCES or err == EPERM:
                        self._skip(R_PERMISSION, path)
                    else:
                        self._skip(R_ERROR, path)
                    continue
                if S_ISREG(st.st_mode):
                    if st.st_nlink > 1 or self.single:
                        if not self.seen.insert(devino(st.st_dev, st.st_ino)).second:
                            self._skip(R_HARDLINK, path)
                            continue
                    self.sizes_v.push_back(st.st_size)
                    if st.st_size > 0:
                        self._pick(path, plen, st.st_size, st.st_mode)
                elif S_ISDIR(st.st_mode):
                    if st.st_dev != dev and not self.cross_mounts:
                        self._skip(R_OTHER_FS, path)
                    elif self.dirs_seen.insert(devino(st.st_dev, st.st_ino)).second:
                        sub_path.push_back(path)
                        sub_dev.push_back(st.st_dev)
                elif S_ISLNK(st.st_mode):                    # replaced by a link since readdir
                    self._skip(R_SYMLINK, path)
                else:
                    self._skip(R_SPECIAL, path)
            closedir(dp)                                     # closes fd
            j = <Py_ssize_t>sub_path.size() - 1
            while j >= 0:                                    # depth first, in listing order
                self.stack_path.push_back(sub_path[j])
                self.stack_dev.push_back(sub_dev[j])
                j -= 1

    @property
    def nr_files(self):
        return <Py_ssize_t>self.sizes_v.size()

    def sizes(self):
        """int64 st_size of each regular file counted, in walk order."""
        cdef Py_ssize_t n = self.sizes_v.size()
        out = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] o = out
        cdef Py_ssize_t i
        for i in range(n):
            o[i] = self.sizes_v[i]
        return out

    def picks(self):
        """[(kind, path bytes, file index, size)]: PICK_LIB 0, PICK_EXE 1, PICK_DATA 2."""
        cdef size_t i, start = 0
        res = []
        for i in range(self.pick_kind.size()):
            res.append((self.pick_kind[i], self.pick_paths.substr(start, self.pick_end[i] - start),
                        self.pick_idx[i], self.pick_size[i]))
            start = self.pick_end[i]
        return res

    def skipped(self):
        """[(count, [example path bytes])] per reason index."""
        cdef int r
        return [(self.counts[r], [bytes(p) for p in self.examples[r]]) for r in range(NR_REASONS)]
