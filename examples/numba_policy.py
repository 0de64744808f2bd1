"""A user folio-order policy in a few lines (README: "Your own policies and
workloads"): 64K mTHP only where the 2M region around the fault is already half
present, on a hash-join build (a dense input scan, sparse random bucket writes)."""
import ppsize
from ppsize import workloads as W


@ppsize.anon_order_policy
def dense_regions_only(info):
    # 64K folios once half of this page table's 2M region is present, else 4K pages
    if info.pte_present >= 256 and info.allowed >> 4 & 1:
        return 4
    return info.process_order


MiB = 1 << 20
for policy in (None, dense_regions_only):
    k = ppsize.Kernel("4K", "4G", thp="never", mthp={"64K": "always"}, anon_order_policy=policy)
    p = k.spawn()
    table, rel = p.mmap(1024 * MiB), p.mmap(2 * MiB)     # 16M buckets of 64 bytes, 128K tuples
    W.run(p, W.sequential(rel, 2 * MiB, 8), 256 * 1024, write=True)    # load the relation
    W.run(p, W.hash_join(table, 1024 * MiB, rel, 2 * MiB, seed=1), 2 * 128 * 1024, write=True)
    s = p.status()
    folios = {size: st["anon_fault_alloc"] for size, st in k.mthp_stats().items()}
    print(f"{policy.name if policy else 'Linux (built-in)':>18}: RssAnon {s['RssAnon'] // 1024:5} MiB, "
          f"{s['minflt']:7,} faults, folios {folios}")
    k.check()
