"""CPU presets for the MMU model, every value with the document and section it comes from.

A field a source does not give is left out (listed under ``not_sourced``); the model
then needs it from the caller (``TLB(cpu, l2d={"ways": ...})``) or uses a documented
model default (replacement LRU). ``"custom"`` is built entirely from keyword arguments.

Sources (read through the project's document search; the section is cited per value):
- A76: Arm Cortex-A76 Core Technical Reference Manual, 100798_0300_00_en (r3p0).
- A55: Arm Cortex-A55 Core Technical Reference Manual 100442_0100 ("Encoding for the L2
  TLB"), and Intel's Agilex 5 HPS Technical Reference Manual 814346, 3.6.3.4.1
  "Translation Lookaside Buffer", Table 48 (its table of the A55 core's MMU).
- Zen 5: AMD "Next Generation 'Zen 5' Core", Hot Chips 2024 (Cohen, Subramony, Clark),
  microarchitecture overview slide; CPUID Fn8000_0005 read on this machine (family 1Ah
  model 02h, "AMD EPYC"). The Software Optimization Guide for the AMD Zen5
  Microarchitecture (pub. 58455 rev 1.00) exists in the corpus but its TLB section's
  text could not be read, so no value is taken from it.
- Neoverse N1: Arm Neoverse N1 Core Technical Reference Manual 100616_0401_02 (a text
  conversion of the PDF in a public repository), sections 6.2 and 7.1; latencies from
  Arm's white paper "The Arm Neoverse N1 Platform: Building Blocks for the Next-Gen
  Cloud-to-Edge Infrastructure SoC", read through a public notes file that quotes it
  (the PDF itself was not in the corpus).
Not covered: Neoverse N2, V1, V2: no TRM text for their MMU was found (searched: the
document corpus for TRMs 102099 / 101427 / 102375 and "L1 data TLB", "L2 TLB"; exact
strings of the N1 TRM's MMU text; vendors' manuals). What was found: V2 Hot Chips 2023
slides (L1 DTLB 48 entries, fully associative; L2 10-cycle load-to-use) and V1 slides
("MMU capacity 1.2K->2K entry"; L2 10-cycle load-to-use): no L2 TLB associativity, so
no usable preset.
"""
from __future__ import annotations

__all__ = ["PRESETS", "CPU_PRESETS"]

A76 = "Arm Cortex-A76 Core TRM 100798_0300_00_en"
A55 = "Arm Cortex-A55 Core TRM 100442_0100"
AGILEX = "Intel Agilex 5 HPS TRM 814346 3.6.3.4.1 Table 48 (Cortex-A55 MMU components)"
ZEN5 = "AMD 'Zen 5' Core, Hot Chips 2024, microarchitecture overview slide"
CPUID = "CPUID Fn8000_0005 on this machine (family 1Ah model 02h)"
N1 = "Arm Neoverse N1 Core TRM 100616_0401_02"
N1_WP = "Arm white paper 'The Arm Neoverse N1 Platform' (L1/L2 cache paragraphs)"
WIKICHIP_A76 = "WikiChip, 'Cortex-A76 - Microarchitectures - ARM', Memory Hierarchy (L2)"
ZEN5_L2_ASSUMED = ("fully associative (an assumption: AMD's Zen 5 optimization guide, pub. 58455, "
                   "was found in the corpus only as a title page; no readable source gives the "
                   "associativity)")

PRESETS: dict = {
    "cortex-a76": {
        "arch": "arm64",
        "l1i": {"entries": 48, "ways": 48, "sizes": ["4K", "16K", "64K", "2M", "32M"],
                "cite": f"{A76} A5.2.1: instruction L1 TLB, 48-entry fully associative, "
                        "4KB, 16KB, 64KB, 2MB and 32MB granularity"},
        "l1d": {"entries": 48, "ways": 48, "sizes": ["4K", "16K", "64K", "2M", "512M"],
                "cite": f"{A76} A5.2.2: data L1 TLB, 48-entry fully associative, "
                        "4KB, 16KB, 64KB, 2MB and 512MB granularity"},
        "l2": {"entries": 1280, "ways": 5,
               "sizes": ["4K", "16K", "64K", "2M", "32M", "512M", "1G"],
               "cite": f"{A76} A5.2.3 Table A5-3: 5-way set associative, 1280 entries; "
                       "VA to PA mappings for 4KB, 16KB, 64KB, 2MB, 32MB, 512MB, 1GB"},
        "walk_caches": [
            {"name": "l2_walk", "in_tlb": "l2", "distance": 1,
             "cite": f"{A76} A5.2.3: the L2 TLB also stores 'intermediate PAs obtained "
                     "during a translation table walk' (which levels is not stated: the "
                     "model keeps the entry that points at the last-level table)"}],
        "dcache": {"size": 65536, "ways": 4,
                   "cite": f"{A76} A6.1: L1 data cache 64KB; A6.1.2: 4-way set "
                           "associative, 64-byte lines (walk references are assumed to "
                           "look up the L1 data cache: not stated)"},
        "coalesce": {"value": True,
                     "cite": f"inferred from {A76} A5.2.1-A5.2.2: the L1 TLBs hold 64KB and "
                             "32MB entries, which a 4K-granule table maps only as "
                             "contiguous-bit runs (16 x 4K, 16 x 2M)"},
        "latencies": {
            "l1_hit": {"cycles": 1, "cite": f"{A76} A5.2.1/A5.2.2: an L1 TLB hit 'provides "
                                            "a single CLK cycle access'"},
            "l2_hit": {"cycles": 3, "cite": f"{A76} A5.2.3: 'access to the L2 TLB usually "
                                            "takes three cycles'"},
            "walk_ref": {"cycles": 9, "cite": f"{WIKICHIP_A76}: the L2 cache's 'fastest "
                                              "load-to-use latency is 9 cycles' (a secondary "
                                              "source; the model charges every walk reference "
                                              "as an L2 cache hit, see README)"}},
        "not_sourced": ["TLB replacement policy (modelled LRU)",
                        "walk cache capacity (shares the L2 TLB's 1280 entries)",
                        "walk memory-reference latency from Arm (the 9-cycle L2 figure is "
                        "WikiChip's; the L1 data cache's load-to-use latency was not found)",
                        "the L2 TLB format's coalescing of 4 contiguous pages "
                        "(A6.6 Table A6-31 bit 6) is not modelled"],
    },
    "neoverse-n1": {
        "arch": "arm64",
        "l1i": {"entries": 48, "ways": 48, "sizes": ["4K", "16K", "64K", "2M", "32M"],
                "cite": f"{N1} 6.2.1: instruction L1 TLB, 48-entry fully associative, 4KB, "
                        "16KB, 64KB, 2MB and 32MB granularity"},
        "l1d": {"entries": 48, "ways": 48, "sizes": ["4K", "16K", "64K", "2M", "512M"],
                "cite": f"{N1} 6.2.2: data L1 TLB, 48-entry fully associative, 4KB, 16KB, "
                        "64KB, 2MB and 512MB granularity"},
        "l2": {"entries": 1280, "ways": 5,
               "sizes": ["4K", "16K", "64K", "2M", "32M", "512M", "1G"],
               "cite": f"{N1} 6.2.3 Table 6-4: 5-way set associative, 1280-entry; VA to PA "
                       "mappings for 4KB, 16KB, 64KB, 2MB, 32MB, 512MB and 1GB"},
        "walk_caches": [
            {"name": "l2_walk", "in_tlb": "l2", "distance": 1,
             "cite": f"{N1} Table 6-4: the L2 TLB also stores 'intermediate PAs obtained during "
                     "a translation table walk' (levels not stated: the model keeps the entry "
                     "that points at the last-level table)"}],
        "dcache": {"size": 65536, "ways": 4,
                   "cite": f"{N1} 7.1 / 7.1.2: L1 data cache 64KB, 4-way set associative, "
                           "64-byte lines; 6.5.1: with Write-Back walk attributes 'the data "
                           "cache lookup is performed' for translation table walks"},
        "coalesce": {"value": True,
                     "cite": f"inferred from {N1} 6.2.1-6.2.2: the L1 TLBs hold 64KB and 32MB "
                             "entries, which a 4K-granule table maps only as contiguous runs"},
        "latencies": {
            "l1_hit": {"cycles": 1, "cite": f"{N1} 6.2.1/6.2.2: an L1 TLB hit 'provides a single "
                                            "CLK cycle access'"},
            "l2_hit": {"cycles": 3, "cite": f"{N1} Table 6-4: 'access to the L2 TLB usually takes "
                                            "three cycles'"},
            "dcache_hit": {"cycles": 4, "cite": f"{N1_WP}: 64kB L1 data cache, '4-cycle load to "
                                                "use latency' (a walk reference that hits it)"},
            "dcache_miss": {"cycles": 11, "cite": f"{N1_WP}: the 1MB L2 cache's 'load-to-use "
                                                  "latency of 11 cycles' (a walk reference that "
                                                  "misses the L1 data cache is assumed to hit "
                                                  "the L2)"}},
        "not_sourced": ["TLB replacement policy (modelled LRU)",
                        "walk cache capacity (shares the L2 TLB's 1280 entries)",
                        "walks that miss the L2 cache too (charged as L2 hits)",
                        "the L2 TLB's four walks in parallel (6.3) are not modelled: walks are "
                        "serial, so cycles are an upper bound for a miss-heavy stream"],
    },
    "cortex-a55": {
        "arch": "arm64",
        "l1i": {"entries": 15, "ways": 15, "cite": f"{AGILEX}: instruction L1 TLB 15, fully associative"},
        "l1d": {"entries": 16, "ways": 16, "cite": f"{AGILEX}: data L1 TLB 16, fully associative"},
        "l2": {"entries": 1024, "ways": 4,
               "cite": f"{AGILEX}: L2 TLB 1024, 4-way set associative; {A55} 'Encoding "
                       "for the L2 TLB': TLB index 0x000-0FF main TLB (256 sets x 4 ways)"},
        "walk_caches": [
            {"name": "walk_cache", "entries": 64, "ways": 4, "distance": 1,
             "cite": f"{AGILEX}: walk cache RAM 64, 4-way, 'holds the results of a stage 1 "
                     f"translation up to, but not including the last level'; {A55}: "
                     "index 0x100-10F walk cache (16 sets x 4 ways)"}],
        "not_sourced": ["entry sizes each level holds (modelled: every size)",
                        "contiguous-bit coalescing (modelled on)",
                        "TLB replacement policy (modelled LRU)", "data cache for walks",
                        "every latency (the L2 TLB takes 'a variable number of cycles')"],
    },
    "amd-zen5": {
        "arch": "x86_64",
        "l1i": {"entries": 64, "ways": 64, "sizes": ["4K", "2M"],
                "cite": f"{ZEN5}: 'L1: 64 entry ITLB'; {CPUID}: EBX[15:0] = ff40 and "
                        "EAX[15:0] = ff40 (4K and 2M/4M: fully associative, 64 entries)"},
        "l1d": {"entries": 96, "ways": 96, "sizes": ["4K", "2M"],
                "cite": f"{ZEN5}: '96 entry DTLB'; {CPUID}: EBX[31:16] = ff60 and "
                        "EAX[31:16] = ff60 (4K and 2M/4M: fully associative, 96 entries)"},
        "l2i": {"entries": 2048, "ways": None, "sizes": ["4K", "2M"], "assumed": ZEN5_L2_ASSUMED,
                "cite": f"{ZEN5}: 'L2: 2K ITLB'"},
        "l2d": {"entries": 4096, "ways": None, "sizes": ["4K", "2M"], "assumed": ZEN5_L2_ASSUMED,
                "cite": f"{ZEN5}: '4K DTLB everything but 1G'"},
        "coalesce": {"value": False,
                     "cite": "x86-64 page tables have no contiguous bit "
                             "(arch/x86/include/asm/pgtable_types.h)"},
        "not_sourced": ["L2 ITLB / DTLB associativity: modelled fully associative, listed in "
                        "TLB.assumptions (pass l2i/l2d ways= to override; this VM's CPUID "
                        "Fn8000_0006 reports a 128-entry L2 DTLB, a hypervisor's value that "
                        "contradicts AMD's slide)",
                        "1G entries (CPUID Fn8000_0019 reads zeros in this VM): a 1G page is "
                        "cached as 2M splinters",
                        "page-walk caches (the guide's PDE caching could not be read)",
                        "TLB replacement policy (modelled LRU)", "every latency"],
    },
}

CPU_PRESETS = tuple(PRESETS) + ("custom",)
