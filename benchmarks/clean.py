"""Table cleaning: datawheel's DuckDB pipeline vs the seed pandas approach, side by side.

Replicates the store-item-demand train.csv (date,store,item,sales) to --rows rows with
injected duplicates, missing values and rule violations, writes it as CSV, then cleans that
same file twice, each in its own subprocess:

- ours: run_clean with dedupe + drop_missing(store) + fill(sales=0) + types + 2 rules, timed
  from reading the CSV to the run folder written: clean.parquet, quarantine.parquet (every
  failing row with all its reasons and its original text) and the reports, as the product does;
- pandas: read_csv, drop_duplicates, dropna, fillna, then one df.query per rule, timed from
  read_csv to the cleaned DataFrame in memory (it writes nothing, keeps no reasons).

Both clocks start after the imports. Peak memory is each subprocess's own high-water mark
(VmHWM): ru_maxrss would also count the parent's footprint inherited at fork, and the parent
has just built the table. Both must keep the same number of rows.

Usage: python benchmarks/clean.py [--rows 10000000] [--memory-limit 2GB] [--json]
       python benchmarks/clean.py --rows 50000000 --ours-only   # the larger-than-memory check
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import SHARED, emit

TRAIN = SHARED / "store_item_demand" / "train.csv"
RULES = ["sales >= 0", "store >= 1 and store <= 10"]


def build(rows: int, path: Path) -> None:
    """Write the benchmark CSV: ~1% exact duplicates, ~1% missing sales, ~0.5% missing store,
    ~0.5% negative sales and ~0.3% stores out of range (all decided by a hash of the row)."""
    import duckdb

    con = duckdb.connect()
    (base,) = con.execute(f"SELECT count(*) FROM read_csv('{TRAIN}')").fetchone() or (0,)
    copies = rows // base + 1
    dup = rows // 100
    con.execute(
        f"""
        CREATE TABLE g AS
        SELECT date, store, CAST(CAST(item AS INTEGER) + 50 * k AS VARCHAR) AS item, sales,
               row_number() OVER () AS i
        FROM read_csv('{TRAIN}', all_varchar=true), range({copies}) r(k)
        LIMIT {rows - dup}
        """
    )
    con.execute(
        f"""
        COPY (
          SELECT date,
                 CASE WHEN hash(i, 1) % 200 = 0 THEN NULL
                      WHEN hash(i, 2) % 300 = 0 THEN '99' ELSE store END AS store,
                 item,
                 CASE WHEN hash(i, 3) % 100 = 0 THEN NULL
                      WHEN hash(i, 4) % 200 = 0 THEN '-' || sales ELSE sales END AS sales
          FROM (SELECT * FROM g UNION ALL (SELECT * FROM g WHERE hash(i, 5) % 50 = 0
                LIMIT {dup}))
        ) TO '{path}' (HEADER, DELIMITER ',')
        """
    )
    con.close()


def work_ours(csv: Path, memory_limit: str) -> int:
    from datawheel.tables import CleanSpec, Dedupe, DropMissing, Rule, TableSource, run_clean

    _start_clock()
    spec = CleanSpec(
        dedupe=Dedupe(),
        drop_missing=DropMissing(columns=["store"]),
        fill={"sales": 0},
        types={"store": "integer", "item": "integer", "sales": "double"},
        rules=[Rule(expr=r) for r in RULES],
    )
    with tempfile.TemporaryDirectory(prefix="bench-clean-out-") as out:
        report = run_clean(TableSource(name="sales", path=str(csv)), spec, Path(out), memory_limit)
        _stop_clock()
    print(report.render(), file=sys.stderr)
    return report.rows_clean


def work_pandas(csv: Path) -> int:
    import pandas as pd

    _start_clock()
    df = pd.read_csv(csv)
    df = df.drop_duplicates()
    df = df.dropna(subset=["store"])
    df = df.fillna({"sales": 0})
    for rule in RULES:
        df = df.query(rule)
    _stop_clock()
    return len(df)


_CLOCK: dict[str, float] = {}


def _start_clock() -> None:
    """Start timing after the imports, so both sides are timed on the work alone."""
    _CLOCK["start"] = time.perf_counter()


def _stop_clock() -> None:
    _CLOCK["stop"] = time.perf_counter()


def peak_mb() -> float:
    """This process's peak resident memory in MB (its own, not a forking parent's)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(which: str, csv: Path, memory_limit: str) -> dict:
    """Run one side in a fresh interpreter; it reports its own time, rows and maxrss."""
    cmd = [sys.executable, __file__, "--worker", which, "--csv", str(csv)]
    cmd += ["--memory-limit", memory_limit]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{which} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--memory-limit", default="2GB", help="DuckDB memory cap for ours.")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--ours-only", action="store_true", help="skip pandas (e.g. at 50M rows it needs ~15 GB)"
    )
    ap.add_argument("--worker", choices=["ours", "pandas"], help=argparse.SUPPRESS)
    ap.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        launched = time.perf_counter()
        kept = (
            work_ours(args.csv, args.memory_limit)
            if args.worker == "ours"
            else work_pandas(args.csv)
        )
        seconds = _CLOCK.get("stop", time.perf_counter()) - _CLOCK.get("start", launched)
        print(json.dumps({"seconds": seconds, "kept": kept, "peak_mb": peak_mb()}))
        return

    with tempfile.TemporaryDirectory(prefix="bench-clean-") as tmp:
        csv = Path(tmp) / "sales.csv"
        t = time.perf_counter()
        build(args.rows, csv)
        print(
            f"built {args.rows:,} rows ({csv.stat().st_size / 2**20:.0f} MiB) "
            f"in {time.perf_counter() - t:.1f}s"
        )
        ours = measure("ours", csv, args.memory_limit)
        if args.ours_only:
            print(
                f"ours: {ours['seconds']:.1f}s, peak {ours['peak_mb']:.0f} MB, "
                f"{ours['kept']:,} rows kept, DuckDB memory capped at {args.memory_limit}"
            )
            emit(
                {
                    "rows": args.rows,
                    "ours_s": round(ours["seconds"], 2),
                    "ours_peak_mb": round(ours["peak_mb"]),
                    "memory_limit": args.memory_limit,
                    "kept": ours["kept"],
                },
                args.json,
            )
            return
        pandas = measure("pandas", csv, args.memory_limit)
    result = {
        "rows": args.rows,
        "ours_s": round(ours["seconds"], 2),
        "pandas_s": round(pandas["seconds"], 2),
        "speedup": round(pandas["seconds"] / ours["seconds"], 2),
        "ours_peak_mb": round(ours["peak_mb"]),
        "pandas_peak_mb": round(pandas["peak_mb"]),
        "kept_equal": ours["kept"] == pandas["kept"],
    }
    print(f"{'':8} {'seconds':>9} {'peak MB':>9} {'rows kept':>11}")
    for name, r in (("ours", ours), ("pandas", pandas)):
        print(f"{name:8} {r['seconds']:9.2f} {r['peak_mb']:9.0f} {r['kept']:11,}")
    print(f"speedup {result['speedup']}x; same rows kept: {result['kept_equal']}")
    emit(result, args.json)


if __name__ == "__main__":
    main()
