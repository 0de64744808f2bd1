"""ppsize/_validate.py: the one definition of each argument check, and the entry points
(compiled and Python) that use it give its messages."""
import errno

import numpy as np
import pytest

import ppsize
from ppsize import _validate as v
from ppsize._core import pagecache as core_pc
from ppsize._core import xarray as core_xa
from ppsize._core.buddy import BuddyAllocator
from ppsize._core.folio import FolioTable
from ppsize._core.xarray import XArray


@pytest.mark.parametrize("good", [0, 7, -3, np.int64(5), np.uint8(3), 1 << 70])
def test_as_int_accepts_integers(good):
    assert v.as_int(good, "x") == int(good) and type(v.as_int(good, "x")) is int


@pytest.mark.parametrize("bad", [True, np.bool_(False), 1.0, "3", None, [1]])
def test_as_int_refuses_others_naming_the_value(bad):
    with pytest.raises(TypeError, match=r"^pfn must be an int, not \w+ \(") as e:
        v.as_int(bad, "pfn")
    assert repr(bad) in str(e.value)


def test_ranges_and_orders():
    assert v.as_u64((1 << 64) - 1, "index") == (1 << 64) - 1
    with pytest.raises(ValueError, match=r"index -1 out of range \[0, 2\*\*64\)"):
        v.as_u64(-1, "index")
    assert v.as_order(9, hi=9) == 9
    with pytest.raises(ValueError, match="^order 10 out of range 0..9$"):
        v.as_order(10, hi=9)
    with pytest.raises(ValueError, match="^min_order -1 out of range 0..11$"):
        v.in_range(-1, 0, 11, "min_order")
    assert v.as_int_or_size("64K", "size") == 65536 and v.as_int_or_size(5, "size") == 5


def test_choice_lists_the_choices_in_order():
    assert v.as_choice("b", ("a", "b"), "mode") == "b"
    with pytest.raises(ValueError, match=r"^unknown mode 'c' for x; choose one of a, b$"):
        v.as_choice("c", ("a", "b"), "mode", " for x")
    with pytest.raises(ValueError, match="unknown mode 3"):
        v.as_choice(3, ("a", "b"), "mode")


def test_page_size():
    assert v.as_page_size("16K", 4096) == 16384
    for bad in ("12K", "2K", 0):
        with pytest.raises(ValueError, match="must be a power of two >= the kernel's 4K"):
            v.as_page_size(bad, 4096)
    with pytest.raises(ValueError, match="folio_size 8K must be a power of two >= the page size 16K"):
        v.as_page_size("8K", 16384, "folio_size", "the page size")


def test_arrays():
    a = np.arange(6, dtype=np.uint64).reshape(2, 3)
    assert v.as_addresses(a) is a                                  # no copy
    b = v.as_addresses([[1, -1]])
    assert b.dtype == np.uint64 and b.shape == (1, 2) and int(b[0, 1]) == (1 << 64) - 1
    with pytest.raises(TypeError, match="vas must be integers, not dtype float64"):
        v.as_addresses([1.5], "vas")
    with pytest.raises(ValueError, match="64 bits"):
        v.as_addresses([1 << 64])
    assert v.as_index_array([]).dtype == np.uint64
    with pytest.raises(ValueError, match="indices contains a negative value -2"):
        v.as_index_array([1, -2])


def test_entry_points_give_the_shared_messages():
    """The compiled modules and the Python API raise the validator's own message."""
    expected = "nr_pages must be an int, not float (1.5)"
    for make in (lambda: BuddyAllocator(1.5, 3, 1), lambda: FolioTable(1.5)):
        with pytest.raises(TypeError) as e:
            make()
        assert str(e.value) == expected
    with pytest.raises(TypeError, match=r"^index must be an int, not str \('1'\)$"):
        XArray().load("1")
    k = ppsize.Kernel("4K", "64M")
    f = k.create_file("/f", 4096)
    with pytest.raises(TypeError, match=r"^index must be an int, not float \(1.0\)$"):
        k.pagecache.get_folio(f, 1.0)
    with pytest.raises(TypeError, match=r"^file id must be an int"):
        k.pagecache.core.read("0", 0, 1)
    for make in (lambda: k.spawn(page_size="12K"), lambda: ppsize.abi.AddressSpace(page_size="12K")):
        with pytest.raises(ValueError, match="page_size 12K must be a power of two >= the kernel.s 4K"):
            make()
    with pytest.raises(ValueError, match="unknown pgtable 'flat'; choose one of emulated, native"):
        k.spawn(page_size="16K", pgtable="flat")


def test_kernel_error_codes_are_real_errnos():
    """The compiled kernels return -errno values (libc.errno), equal to Python's."""
    assert (core_xa.EEXIST, core_xa.EINVAL, core_xa.ENOMEM) == (errno.EEXIST, errno.EINVAL, errno.ENOMEM)
    assert (core_pc.ENOENT, core_pc.ENOMEM, core_pc.EEXIST, core_pc.EINVAL, core_pc.ELOOP) == \
        (errno.ENOENT, errno.ENOMEM, errno.EEXIST, errno.EINVAL, errno.ELOOP)
    xa = XArray()
    assert xa.add(0, 4, 2) == 0
    assert xa.add(2, 8) == -errno.EEXIST                          # overlaps the order-2 entry
    assert xa.try_split(1 << 20, 0) == -errno.EINVAL              # no entry there
    k = ppsize.Kernel("4K", "64M")
    f = k.create_file("/f", 1 << 20)
    assert k.pagecache.core.get_folio(f.id, 3, False, 0) == -errno.ENOENT
    assert k.pagecache.get_folio(f, 3, create=False) is None      # ENOENT -> None, as before
