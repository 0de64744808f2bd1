"""Every geometry value against the tables in KERNEL_REFERENCE.md."""
import json

import pytest

import ppsize
from ppsize.cli import main

K, M, G, T = 1 << 10, 1 << 20, 1 << 30, 1 << 40

# granule -> (entries/table, PMD block, PUD span, CONT_PTES, CONT_PMDS, MAX_PAGE_ORDER, PMD order)
GRANULE = {
    4 * K: (512, 2 * M, 1 * G, 16, 16, 10, 9),
    16 * K: (2048, 32 * M, 64 * G, 128, 32, 11, 11),
    64 * K: (8192, 512 * M, 4 * T, 32, 32, 13, 13),
}
# name -> (levels, PTRS_PER_PGD)
VA = {
    "arm64-4k-39": (3, 512), "arm64-4k-48": (4, 512), "arm64-4k-52": (5, 16),
    "arm64-16k-36": (2, 2048), "arm64-16k-47": (3, 2048), "arm64-16k-48": (4, 2),
    "arm64-16k-52": (4, 32), "arm64-64k-42": (2, 8192), "arm64-64k-48": (3, 64),
    "arm64-64k-52": (3, 1024), "x86_64-4l": (4, 512), "x86_64-5l": (5, 512),
}


def test_names():
    assert ppsize.GEOMETRIES == list(VA)


@pytest.mark.parametrize("name", list(VA))
def test_geometry_matches_reference(name):
    g = ppsize.geometry(name)
    levels, pgd = VA[name]
    assert (g.levels, g.pgd_entries) == (levels, pgd)
    entries, pmd, pud, cont_ptes, cont_pmds, max_order, pmd_order = GRANULE[g.page_size]
    assert g.entries == (pgd,) + (entries,) * (levels - 1)
    assert g.spans[-1] == g.page_size
    assert g.pmd_size == pmd
    if levels >= 3:
        assert g.spans[-3] == pud
    assert g.pgd_entries * g.spans[0] == 1 << g.va_bits
    assert g.max_page_order == max_order and g.pmd_order == pmd_order
    assert g.fault_around_pages == 64 * K // g.page_size
    assert g.max_pagecache_order == min(11, pmd_order)
    if g.arch == "x86_64":
        assert (g.cont_ptes, g.cont_pmds) == (1, 1)
        assert g.block_sizes == {"PMD": 2 * M, "PUD": 1 * G}
        assert g.va_bits == {4: 48, 5: 57}[levels]
    else:
        assert (g.cont_ptes, g.cont_pmds) == (cont_ptes, cont_pmds)
        # PUD-level blocks only with 4K pages (pud_sect_supported)
        expect = {"PMD": pmd, "PUD": 1 * G} if g.page_size == 4 * K else {"PMD": pmd}
        assert g.block_sizes == expect
        assert g.va_bits == int(name.rsplit("-", 1)[1])


def test_level_names_and_vmpte_levels():
    assert ppsize.geometry("arm64-4k-52").level_names == ("PGD", "P4D", "PUD", "PMD", "PTE")
    assert ppsize.geometry("arm64-64k-48").level_names == ("PGD", "PMD", "PTE")
    assert ppsize.geometry("arm64-16k-36").level_names == ("PGD", "PTE")
    # VmPTE counts PTE, PMD and PUD tables, never the PGD or a P4D
    assert ppsize.geometry("arm64-4k-52").vmpte_levels() == (2, 3, 4)
    assert ppsize.geometry("x86_64-4l").vmpte_levels() == (1, 2, 3)
    assert ppsize.geometry("arm64-64k-42").vmpte_levels() == (1,)


def test_unknown_geometry():
    with pytest.raises(ValueError, match="arm64-8k-48"):
        ppsize.geometry("arm64-8k-48")
    with pytest.raises(TypeError, match="int"):
        ppsize.geometry(48)


def test_cli_table_and_json(capsys):
    assert main(["geometry"]) == 0
    out = capsys.readouterr().out
    for name in ppsize.GEOMETRIES:
        assert name in out
    assert main(["geometry", "--json", "arm64-16k-48"]) == 0
    data = json.loads(capsys.readouterr().out)
    (g,) = data["geometries"]
    assert g["pgd_entries"] == 2 and g["cont_ptes"] == 128 and g["max_pagecache_order"] == 11


def test_cli_bad_geometry(capsys):
    assert main(["geometry", "sparc"]) == 2
    assert "sparc" in capsys.readouterr().err
