"""Table cleaning: datawheel's DuckDB pipeline vs polars and the seed pandas approach.

Replicates the store-item-demand train.csv (date,store,item,sales) to --rows rows with
injected duplicates, missing values and rule violations, writes it as CSV, then cleans that
same file three times, each in its own subprocess:

- ours: run_clean with dedupe + drop_missing(store) + fill(sales=0) + types + 2 rules, timed
  from reading the CSV to the run folder written: clean.parquet, quarantine.parquet (every
  failing row with all its reasons and its original text) and the reports, as the product does;
- polars: the same steps in the same order, written as one lazy query (scan_csv, all columns
  as text), with the same outputs: dedupe marks each row's first equal row with a window
  (min of the row number over all columns; NULLs equal), the checks (store missing, each
  value that does not convert to its type, each failed rule, the rules given as the same SQL
  through pl.sql_expr) become one flag column each, and two lazy sinks, run together by
  collect_all on the streaming engine, write clean.parquet (the typed rows that pass every
  check, in source order) and quarantine.parquet (each duplicate and each failing row with
  _row, _line, the list of all its reasons and its original values as JSON, by _row),
  timed from the scan to both files written;
- pandas: read_csv, drop_duplicates, dropna, fillna, then one df.query per rule, timed from
  read_csv to the cleaned DataFrame in memory (it writes nothing, keeps no reasons).

Every clock starts after the imports. Peak memory is each subprocess's own high-water mark
(VmHWM): ru_maxrss would also count the parent's footprint inherited at fork, and the parent
has just built the table. All must keep the same number of rows, and polars must quarantine
as many rows as ours (it exits 1 otherwise). Targets: ours <= 1.0x polars' time
(``vs_polars``, ours / polars) and ours <= 0.5x pandas' peak memory.

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
MISSING = ["store"]  # drop_missing: quarantine rows without a store
FILL = {"sales": 0}
TYPES = {"store": "integer", "item": "integer", "sales": "double"}
#: a number that only a decimal comma keeps from converting (ours' hint in a types reason)
COMMA_NUMBER = r"^[+-]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+),[0-9]+$"


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


def work_ours(csv: Path, memory_limit: str) -> tuple[int, int | None]:
    from datawheel.tables import CleanSpec, Dedupe, DropMissing, Rule, TableSource, run_clean

    _start_clock()
    spec = CleanSpec(
        dedupe=Dedupe(),
        drop_missing=DropMissing(columns=MISSING),
        fill=FILL,
        types=TYPES,
        rules=[Rule(expr=r) for r in RULES],
    )
    with tempfile.TemporaryDirectory(prefix="bench-clean-out-") as out:
        report = run_clean(TableSource(name="sales", path=str(csv)), spec, Path(out), memory_limit)
        _stop_clock()
    print(report.render(), file=sys.stderr)
    return report.rows_clean, report.rows_quarantined


def work_polars(csv: Path) -> tuple[int, int | None]:
    """Ours' steps as one lazy polars query; writes the same clean and quarantine files."""
    import polars as pl

    _start_clock()
    # every value as text, as ours reads it, so the quarantine keeps it as it came in
    raw = pl.scan_csv(csv, infer_schema=False, row_index_name="_row", row_index_offset=1)
    cols = [c for c in raw.collect_schema().names() if c != "_row"]
    raw = raw.with_columns(pl.col("_row").cast(pl.Int64))
    dtypes = {"integer": pl.Int64, "double": pl.Float64}

    def convert(text: pl.Expr, kind: str) -> pl.Expr:  # as DuckDB's TRY_CAST: blanks around ok
        return text.str.strip_chars().cast(dtypes[kind], strict=False)

    # dedupe (keep first, all columns): every row's first equal row; the others are moved
    marked = raw.with_columns(_keep=pl.col("_row").min().over(cols))
    is_dup = pl.col("_row") != pl.col("_keep")
    duplicates = marked.filter(is_dup).select(
        "_row",
        _line=pl.lit(None, pl.Int64),
        _reasons=pl.concat_list(pl.format("dedupe: duplicate of row {}", "_keep")),
        _original=pl.struct(cols).struct.json_encode(),
    )

    def checks(text) -> list[tuple[pl.Expr, pl.Expr]]:
        """(fails, reason) per check, given each column's text after the fill."""
        found = [
            (text(c).str.strip_chars().fill_null("") == "", pl.lit(f"drop_missing: {c} is missing"))
            for c in MISSING
        ]
        for c, kind in TYPES.items():
            hint = pl.when(text(c).str.strip_chars().str.contains(COMMA_NUMBER))
            hint = hint.then(pl.lit(f" (a decimal comma? standardise {c} with how: decimal_comma)"))
            found.append(
                (
                    text(c).is_not_null() & convert(text(c), kind).is_null(),
                    pl.concat_str(
                        pl.lit(f"types: {c} value "),
                        text(c),
                        pl.lit(f" is not {kind}"),
                        hint.otherwise(pl.lit("")),
                    ),
                )
            )
        return found

    # a rule fails where it is false (NULL passes), on the typed values
    rules = [(~pl.sql_expr(r).fill_null(True), pl.lit(f"rule {r}: failed ({r})")) for r in RULES]
    before_types = checks(pl.col)
    flags = [f"_f{i}" for i in range(len(before_types) + len(rules))]
    type_flags, rule_flags = flags[: len(before_types)], flags[len(before_types) :]
    checked = (
        marked.filter(~is_dup)
        .with_columns(_raw=pl.struct(cols))  # the values as they came in
        .with_columns(pl.col(c).fill_null(pl.lit(str(v))) for c, v in FILL.items())
        .with_columns(
            *(fails.alias(f) for f, (fails, _) in zip(type_flags, before_types, strict=True)),
            *(convert(pl.col(c), k) for c, k in TYPES.items()),
        )
        .with_columns(fails.alias(f) for f, (fails, _) in zip(rule_flags, rules, strict=True))
    )
    failed = pl.any_horizontal(flags)

    def filled(c: str) -> pl.Expr:  # the text a check saw, rebuilt only for failing rows
        value = pl.col("_raw").struct.field(c)
        return value.fill_null(pl.lit(str(FILL[c]))) if c in FILL else value

    reasons = [r for _, r in checks(filled)] + [r for _, r in rules]
    failing = checked.filter(failed).select(
        "_row",
        _line=pl.lit(None, pl.Int64),
        _reasons=pl.concat_list(
            pl.when(pl.col(f)).then(r) for f, r in zip(flags, reasons, strict=True)
        ).list.drop_nulls(),
        _original=pl.col("_raw").struct.json_encode(),
    )
    with tempfile.TemporaryDirectory(prefix="bench-clean-polars-") as tmp:
        out = Path(tmp)
        pl.collect_all(
            [
                checked.filter(~failed).select(cols).sink_parquet(out / "clean.parquet", lazy=True),
                pl.concat([failing, duplicates])
                .sort("_row")
                .sink_parquet(out / "quarantine.parquet", lazy=True),
            ]
        )
        _stop_clock()
        kept, quarantined = (
            pl.scan_parquet(out / f"{name}.parquet").select(pl.len()).collect().item()
            for name in ("clean", "quarantine")
        )
    return kept, quarantined


def work_pandas(csv: Path) -> tuple[int, int | None]:
    import pandas as pd

    _start_clock()
    df = pd.read_csv(csv)
    df = df.drop_duplicates()
    df = df.dropna(subset=["store"])
    df = df.fillna({"sales": 0})
    for rule in RULES:
        df = df.query(rule)
    _stop_clock()
    return len(df), None  # it keeps no quarantine


WORKERS = {
    "ours": work_ours,
    "polars": lambda csv, _limit: work_polars(csv),
    "pandas": lambda csv, _limit: work_pandas(csv),
}
_CLOCK: dict[str, float] = {}


def _start_clock() -> None:
    """Start timing after the imports, so every side is timed on the work alone."""
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
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        launched = time.perf_counter()
        kept, quarantined = WORKERS[args.worker](args.csv, args.memory_limit)
        seconds = _CLOCK.get("stop", time.perf_counter()) - _CLOCK.get("start", launched)
        out = {"seconds": seconds, "kept": kept, "quarantined": quarantined, "peak_mb": peak_mb()}
        print(json.dumps(out))
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
        polars = measure("polars", csv, args.memory_limit)
    same = {"kept": polars["kept"] == ours["kept"]}
    same["quarantined"] = polars["quarantined"] == ours["quarantined"]
    result = {
        "rows": args.rows,
        "ours_s": round(ours["seconds"], 2),
        "pandas_s": round(pandas["seconds"], 2),
        "speedup": round(pandas["seconds"] / ours["seconds"], 2),
        "ours_peak_mb": round(ours["peak_mb"]),
        "pandas_peak_mb": round(pandas["peak_mb"]),
        "kept_equal": ours["kept"] == pandas["kept"],
        "polars_s": round(polars["seconds"], 2),
        "polars_peak_mb": round(polars["peak_mb"]),
        "vs_polars": round(ours["seconds"] / polars["seconds"], 2),
        "polars_kept_equal": same["kept"] and same["quarantined"],
    }
    print(f"{'':8} {'seconds':>9} {'peak MB':>9} {'rows kept':>11} {'quarantined':>12}")
    for name, r in (("ours", ours), ("polars", polars), ("pandas", pandas)):
        q = "-" if r["quarantined"] is None else f"{r['quarantined']:,}"
        print(f"{name:8} {r['seconds']:9.2f} {r['peak_mb']:9.0f} {r['kept']:11,} {q:>12}")
    memory = ours["peak_mb"] / pandas["peak_mb"]
    print(
        f"vs pandas: speedup {result['speedup']}x (its time / ours), ours takes {memory:.2f}x "
        f"its peak memory (target <= 0.5), same rows kept: {result['kept_equal']}"
    )
    print(
        f"vs polars: {result['vs_polars']}x its time (target <= 1.0), same rows kept: "
        f"{same['kept']}, same rows quarantined: {same['quarantined']}"
    )
    emit(result, args.json)
    if not result["polars_kept_equal"]:
        print(
            f"WARNING: polars kept {polars['kept']:,} and quarantined {polars['quarantined']:,} "
            f"rows; ours kept {ours['kept']:,} and quarantined {ours['quarantined']:,}",
            file=sys.stderr,
        )
        raise SystemExit(1)


if __name__ == "__main__":
    main()
