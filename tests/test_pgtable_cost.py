"""Emulated vs native page tables for a per-process page size."""
import json

import numpy as np
import pytest

import ppsize
from ppsize.cli import main
from ppsize.procmaps import present_ranges

K, M, G = 1 << 10, 1 << 20, 1 << 30


def test_one_aligned_range_64k_process():
    g4, g64 = ppsize.geometry("arm64-4k-48"), ppsize.geometry("arm64-64k-48")
    cost = ppsize.pgtable_cost([[G, G + 2 * M]], "64K")
    emu, nat = cost.trees
    assert (emu.mode, nat.mode) == ("emulated", "native")
    # emulated: one 4K PTE table (2M), 64K folios folded into CONT runs of 16 PTEs
    assert emu.tables == {"PGD": 1, "PUD": 1, "PMD": 1, "PTE": 1}
    assert emu.vmpte_bytes == 3 * g4.page_size
    assert emu.tlb_entries == 2 * M // g4.cont_pte_size
    # native: a 64K-granule PTE table (512M span, 64K bytes), one PTE per 64K page
    assert nat.tables == {"PGD": 1, "PMD": 1, "PTE": 1}
    assert nat.vmpte_bytes == 2 * g64.page_size
    assert nat.tlb_entries == 2 * M // (64 * K)
    assert nat.levels == 3 and emu.levels == 4
    assert emu.mapped_bytes == nat.mapped_bytes == 2 * M


def test_16k_pages_get_no_contiguous_bit_on_a_4k_kernel():
    emu, nat = ppsize.pgtable_cost([[G, G + 1 * M]], "16K").trees
    assert emu.tlb_entries == 1 * M // (4 * K)        # CONT needs 64K runs: 16K folios never fold
    assert nat.tlb_entries == 1 * M // (16 * K)
    emu64, _ = ppsize.pgtable_cost([[G, G + 1 * M]], "16K", folio_size="64K").trees
    assert emu64.tlb_entries == 1 * M // (64 * K)


def test_ranges_rounded_out_and_merged():
    cost = ppsize.pgtable_cost([[G + 4 * K, G + 8 * K], [G + 60 * K, G + 68 * K]], "64K")
    assert cost.ranges == 1                            # both round out to touching 64K pages
    assert cost.trees[1].mapped_bytes == 128 * K


def test_bad_arguments():
    with pytest.raises(ValueError, match="4K"):
        ppsize.pgtable_cost([[0, 4096]], "2K")
    with pytest.raises(ValueError, match="folio_size"):
        ppsize.pgtable_cost([[0, 65536]], "64K", folio_size="16K")
    with pytest.raises(ValueError, match="shape"):
        ppsize.pgtable_cost([0, 4096], "16K")
    with pytest.raises(ValueError, match="ends before"):
        ppsize.pgtable_cost([[8192, 4096]], "16K")


def test_present_ranges_of_self_cover_touched_memory():
    buf = np.ones(64 * 4096, dtype=np.uint8)           # touched: present
    ranges = present_ranges()
    a = buf.ctypes.data
    inside = (ranges[:, 0] <= a) & (ranges[:, 1] >= a + buf.nbytes)
    assert inside.any()
    assert (ranges[:, 1] > ranges[:, 0]).all()


def test_cli_cost_json(capsys):
    assert main(["geometry", "--cost", "--page-size", "64K", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (cost,) = data["costs"]
    assert [t["mode"] for t in cost["trees"]] == ["emulated", "native"]
    assert all(t["mapped_bytes"] > 0 for t in cost["trees"])


def test_cli_cost_bad_pid(capsys):
    assert main(["geometry", "--cost", "--pid", str(2**22 + 7)]) == 2
    assert "pagemap" in capsys.readouterr().err
