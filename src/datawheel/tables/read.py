"""Load a table source into DuckDB as the table ``raw``.

Files keep the text they came with: CSV/TSV and Excel cells are read as strings
(``all_varchar``), so the quarantine can show a bad row exactly as it arrived. CSV lines that
cannot be parsed (wrong column count, broken quoting) are never dropped silently: they are
returned as :class:`Rejected` rows with their line number and reason.

Every loaded table gets ``__dw_row`` (1-based position in the source) so rows can be traced back,
unless the caller asks for none (``row_column=False``): numbering the rows as they are read
makes DuckDB read on one thread, and the table keeps the source order, so ``rowid + 1`` is the
same number.
"""

from __future__ import annotations

import codecs
import io
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from datawheel.errors import ConfigError, DatawheelError, MissingExtraError, SourceError
from datawheel.tables.spec import TableSource

log = logging.getLogger(__name__)

ROW = "__dw_row"
BATCH_ROWS = 50_000
_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".xlsx": "excel",
    ".xlsm": "excel",
}
_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf_8": "utf-8", "ascii": "utf-8", "latin_1": "latin-1"}


@dataclass
class Rejected:
    """A source line that could not be parsed into a row."""

    line: int
    reason: str
    text: str


@dataclass
class Loaded:
    """What :func:`load` put into DuckDB."""

    columns: list[str]
    rows: int
    rejected: list[Rejected] = field(default_factory=list)
    encoding: str | None = None


def load(
    con: duckdb.DuckDBPyConnection,
    source: TableSource,
    table: str = "raw",
    workdir: Path | None = None,
    row_column: bool = True,
    limit: int | None = None,
) -> Loaded:
    """Read ``source`` into the DuckDB table ``table`` (plus a ``__dw_row`` column).

    ``workdir`` holds temporary files (a UTF-8 copy of a file in another encoding). Without
    ``row_column`` the table has only the source's columns, in source order. ``limit`` reads
    only the first rows (a preview).
    """
    if source.url:
        loaded = _load_sql(con, source, table, row_column, limit)
    else:
        path = Path(source.path or "")
        if not path.is_file():
            raise SourceError(f"{source.name}: file {path} does not exist; check the path")
        if path.stat().st_size == 0:
            raise SourceError(
                f"{source.name}: {path} is empty (0 bytes), so it has no header and no rows; "
                "re-export the table or remove the source"
            )
        fmt = source.format if source.format != "auto" else _format_of(path)
        if fmt in ("csv", "tsv"):
            loaded = _load_csv(con, source, path, fmt, table, workdir, row_column, limit)
        elif fmt == "parquet":
            loaded = _load_scan(con, f"read_parquet({_lit(path)})", table, row_column, limit)
        elif fmt == "jsonl":
            scan = f"read_json({_lit(path)}, format='newline_delimited')"
            loaded = _load_scan(con, scan, table, row_column, limit)
        else:
            loaded = _load_excel(con, source, path, table, row_column, limit)
    log.info("loaded %s: %d rows, %d rejected", source.name, loaded.rows, len(loaded.rejected))
    return loaded


@dataclass
class Preview:
    """A source's columns, its first rows (as text) and, when the header looks wrong, why."""

    columns: list[str]
    rows: list[tuple[str | None, ...]]
    hint: str | None = None


def preview(source: TableSource, rows: int = 5) -> Preview:
    """The first ``rows`` rows of ``source``, read as :func:`clean` would read them.

    The hint fires when most header cells are blank (named ``column<i>``): the first line is
    then likely a report title, and ``skip_rows`` should skip it.
    """
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="datawheel-preview-") as tmp:
            loaded = load(con, source, "raw", Path(tmp), row_column=False, limit=rows)
        cols = ", ".join(f"CAST({ident(c)} AS VARCHAR)" for c in loaded.columns)
        first = con.execute(f"SELECT {cols} FROM raw").fetchall()
    finally:
        con.close()
    blank = sum(1 for i, c in enumerate(loaded.columns) if c == f"column{i + 1}")
    hint = None
    if len(loaded.columns) > 1 and blank * 2 >= len(loaded.columns):
        hint = (
            f"{blank} of {len(loaded.columns)} header cells are empty: if the first lines are a "
            f"title or notes, set skip_rows: to the number of lines above the header"
        )
    return Preview(loaded.columns, [tuple(r) for r in first], hint)


def _format_of(path: Path) -> str:
    """The format the extension names, unless the bytes say otherwise: an Excel workbook
    saved with a .csv name is read as the workbook it is (its bytes are no text to decode)."""
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK\x03\x04") and path.suffix.lower() in (".csv", ".tsv", ".txt"):
        import zipfile

        with zipfile.ZipFile(path) as z:
            if "xl/workbook.xml" in z.namelist():
                log.warning("%s is an Excel workbook (not text): reading it as one", path.name)
                return "excel"
    if head.startswith(b"\xd0\xcf\x11\xe0") and path.suffix.lower() in (".csv", ".tsv"):
        raise SourceError(
            f"{path.name} is an old Excel (.xls) workbook, not text: open it and save it as "
            ".xlsx or CSV (UTF-8), then point the source at that file"
        )
    fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"cannot tell the format of {path.name} from its extension; set format: to one of "
            "csv, tsv, parquet, jsonl, excel"
        )
    return fmt


def _lit(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    """Quote a column name for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    return [n for n in names if n != ROW]


def _load_scan(
    con: duckdb.DuckDBPyConnection,
    scan: str,
    table: str,
    row_column: bool = True,
    limit: int | None = None,
) -> Loaded:
    number = f", row_number() OVER () AS {ROW}" if row_column else ""
    first = f" LIMIT {int(limit)}" if limit is not None else ""
    con.execute(f"CREATE TABLE {table} AS SELECT *{number} FROM {scan}{first}")
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
    return Loaded(_columns(con, table), rows)


# --- CSV -----------------------------------------------------------------------------------


def detect_encoding(path: Path, sample_bytes: int = 1 << 20) -> str:
    """``utf-8`` when the first MiB decodes as UTF-8, else the most plausible guess (cp1252
    when it is as plausible as any: see :func:`datawheel.sources.decode.guess_encoding`)."""
    with path.open("rb") as fh:
        sample = fh.read(sample_bytes)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from datawheel.sources.decode import guess_encoding

    encoding = guess_encoding(sample)
    if encoding is None:
        raise SourceError(
            f"cannot tell the text encoding of {path}; set encoding: (e.g. cp1252, latin-1)"
        )
    return encoding


def _transcode(path: Path, encoding: str, workdir: Path) -> Path:
    """Copy ``path`` to a UTF-8 file in chunks (DuckDB reads only UTF-8/latin-1 offline)."""
    out = workdir / (path.stem + ".utf8" + path.suffix)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with path.open("rb") as src, out.open("w", encoding="utf-8", newline="") as dst:
            while chunk := src.read(1 << 22):
                dst.write(decoder.decode(chunk))
            dst.write(decoder.decode(b"", final=True))
    except (UnicodeDecodeError, LookupError) as exc:
        raise SourceError(
            f"{path} is not valid {encoding}: {exc}; set encoding: to the file's real encoding"
        ) from None
    return out


def _header_line(path: Path, skip: int) -> str:
    """The header: the first line, or the line after ``skip`` lines of preamble."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for _ in range(skip):
            fh.readline()
        return fh.readline()


def _header(path: Path, delimiter: str, skip: int = 0) -> list[str]:
    import csv

    row = next(csv.reader([_header_line(path, skip)], delimiter=delimiter), [])
    names = [c.strip() for c in row]
    if not names or names == [""]:
        where = f"line {skip + 1}" if skip else "the first line"
        raise SourceError(
            f"{path} has no header at {where}; it must name the columns (set skip_rows: to "
            "the number of lines above the header)"
        )
    return unique_names(names)


def unique_names(names: Sequence[str | None]) -> list[str]:
    """Column names as given, with blanks named ``column<i>`` and repeats ``<name>_<n>``."""
    seen: dict[str, int] = {}
    out = []
    for i, given in enumerate(names):
        name = given or f"column{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


def _sniff_delimiter(path: Path, skip: int = 0) -> str:
    first = _header_line(path, skip)
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _load_csv(
    con: duckdb.DuckDBPyConnection,
    source: TableSource,
    path: Path,
    fmt: str,
    table: str,
    workdir: Path | None,
    row_column: bool = True,
    limit: int | None = None,
) -> Loaded:
    encoding = (source.encoding or detect_encoding(path)).lower().replace("-", "_")
    duck_encoding = _DUCKDB_ENCODINGS.get(encoding)
    work = workdir or Path(tempfile.mkdtemp(prefix="datawheel-csv-"))
    if duck_encoding is None:
        path, duck_encoding = _transcode(path, encoding, work), "utf-8"
    delimiter = source.delimiter or ("\t" if fmt == "tsv" else None)
    skip, given = source.skip_rows, path
    if skip:
        # DuckDB reads no rows when the lines above the header end unlike the data's
        # ("\r\n" above, "\n" below): it gets the file from the header line on
        path, skip = _from_line(path, skip, work), 0
    if duck_encoding == "latin-1":
        # _header/_sniff read text as UTF-8; give them a latin-1 view of the same bytes
        head = work / "head.csv"
        with path.open("rb") as fh:
            lines = [fh.readline() for _ in range(skip + 1)]
        head.write_text(b"".join(lines).decode("latin-1"), encoding="utf-8")
        hpath = head
    else:
        hpath = path
    delimiter = delimiter or _sniff_delimiter(hpath, skip)
    try:
        columns = _header(hpath, delimiter, skip)
    except SourceError:
        if not source.skip_rows:
            raise
        raise SourceError(
            f"{given} has no header at line {source.skip_rows + 1}; it must name the columns "
            "(set skip_rows: to the number of lines above the header)"
        ) from None
    spec = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in columns) + "}"
    # no sniffing: the header gives the columns, so a broken quote cannot fool the dialect
    scan = (
        f"read_csv({_lit(path)}, auto_detect=false, header=false, "
        f"skip={skip + 1}, columns={spec}, "
        f"delim={_lit(delimiter)}, quote='\"', escape='\"', encoding={_lit(duck_encoding)}, "
        "store_rejects=true, rejects_table='dw_rejects', rejects_scan='dw_rejects_scan')"
    )
    try:
        loaded = _load_scan(con, scan, table, row_column, limit)
    except duckdb.Error as exc:
        reason = str(exc).strip().splitlines()[0]  # DuckDB adds a page of reader settings
        title = _title_lines(given) if not source.skip_rows else 0
        hint = (
            f"; its first {title} line(s) look like a title above the header: set "
            f"skip_rows: {title} on the source"
            if title
            else ""
        )
        raise SourceError(f"{source.name}: cannot read {given} as CSV: {reason}{hint}") from None
    # strip, not rstrip: on CRLF files DuckDB's csv_line starts with the previous line's "\n"
    rejected = [
        Rejected(int(line) + source.skip_rows, f"{kind}: {msg}", text.strip("\r\n"))
        for line, kind, msg, text in con.execute(
            "SELECT line, CAST(error_type AS VARCHAR), error_message, csv_line "
            "FROM dw_rejects ORDER BY line"
        ).fetchall()
    ]
    # DuckDB reports one reject per bad cell; keep one entry per line
    by_line: dict[int, Rejected] = {}
    for r in rejected:
        by_line.setdefault(r.line, r)
    loaded.rejected = list(by_line.values())
    loaded.encoding = encoding
    return loaded


def _title_lines(path: Path, look: int = 12) -> int:
    """How many lines at the top hold none of the delimiter the lines below share (a
    report title, an export note): 0 when the file starts with its header."""
    with path.open("rb") as fh:
        lines = fh.read(1 << 16).replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    lines = [x.decode("utf-8", "replace") for x in lines[:look] if x.strip()]
    for delim in (",", ";", "\t", "|"):
        counts = [x.count(delim) for x in lines]
        if len(counts) < 3 or not counts[-1]:
            continue
        top = 0
        while top < len(counts) - 2 and counts[top] < counts[-1]:
            top += 1
        if top and len(set(counts[top:])) == 1:
            return top
    return 0


def _from_line(path: Path, skip: int, work: Path) -> Path:
    """A copy of ``path`` without its first ``skip`` lines (ended by \\n, \\r\\n or \\r)."""
    out = work / f"{path.stem}.from-header{path.suffix}"
    with path.open("rb") as src:
        data = src.read(1 << 20)  # the lines above a header are a title and notes
        pos = _after_lines(data, skip)
        src.seek(pos)
        with out.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return out


def _after_lines(data: bytes, skip: int) -> int:
    pos = 0
    for _ in range(skip):
        ends = [i for i in (data.find(b"\n", pos), data.find(b"\r", pos)) if i >= 0]
        if not ends:
            pos = len(data)
            break
        end = min(ends)
        pos = end + (2 if data[end : end + 2] == b"\r\n" else 1)
    return pos


# --- Excel ---------------------------------------------------------------------------------


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _insert_batches(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[str],
    batches: Any,
    row_column: bool = True,
) -> int:
    schema = pa.schema([(c, pa.string()) for c in columns])
    cols = ", ".join(f"{ident(c)} VARCHAR" for c in columns)
    con.execute(f"CREATE TABLE {table} ({cols}{f', {ROW} BIGINT' if row_column else ''})")
    n = 0
    for batch in batches:
        if not batch:
            continue
        arrays = [
            pa.array([_cell_text(r[i]) for r in batch], pa.string()) for i in range(len(columns))
        ]
        arrow_batch = pa.Table.from_arrays(arrays, schema=schema)  # noqa: F841 - used by DuckDB
        number = f", {n} + row_number() OVER ()" if row_column else ""
        con.execute(f"INSERT INTO {table} SELECT *{number} FROM arrow_batch")
        n += len(batch)
    return n


def _load_excel(
    con: duckdb.DuckDBPyConnection,
    source: TableSource,
    path: Path,
    table: str,
    row_column: bool = True,
    limit: int | None = None,
) -> Loaded:
    import openpyxl

    try:
        # openpyxl goes by the name: a workbook saved as .csv is handed over as bytes
        named = path.suffix.lower() in (".xlsx", ".xlsm")
        workbook = path if named else io.BytesIO(path.read_bytes())
        book = openpyxl.load_workbook(workbook, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a bad file
        raise SourceError(f"{source.name}: cannot open {path} as Excel: {exc}") from None
    try:
        sheet = book[source.sheet] if source.sheet else book.worksheets[0]
    except KeyError:
        raise ConfigError(
            f"{source.name}: no sheet {source.sheet!r}; sheets: {', '.join(book.sheetnames)}"
        ) from None
    last = source.skip_rows + 1 + limit if limit is not None else None
    rows = sheet.iter_rows(values_only=True, min_row=source.skip_rows + 1, max_row=last)
    header = next(rows, None)
    if not header:
        raise SourceError(f"{source.name}: {path} has no header row in its sheet")
    columns = unique_names([_cell_text(h) for h in header])

    def batches() -> Any:
        batch: list[tuple[Any, ...]] = []
        for r in rows:
            r = tuple(r) + (None,) * (len(columns) - len(r))
            batch.append(r[: len(columns)])
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
        yield batch

    n = _insert_batches(con, table, columns, batches(), row_column)
    book.close()
    return Loaded(columns, n)


# --- SQL databases -------------------------------------------------------------------------


def hide_password(url: str) -> str:
    """The URL with its password replaced by ***."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


def _load_sql(
    con: duckdb.DuckDBPyConnection,
    source: TableSource,
    table: str,
    row_column: bool = True,
    limit: int | None = None,
) -> Loaded:
    import sqlalchemy as sa

    from datawheel.config import resolve_secret  # late: config imports the table specs

    url = resolve_secret(source.url or "")
    shown = hide_password(url)
    try:
        engine = sa.create_engine(url)
    except ModuleNotFoundError as exc:
        raise MissingExtraError(
            f"the database driver {exc.name!r} for {shown}", "postgres"
        ) from None
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"{source.name}: {shown} is not a valid SQLAlchemy URL: {exc}") from None
    query = (
        sa.text(source.query)
        if source.query
        else sa.select(sa.text("*")).select_from(sa.table(source.table or ""))
    )
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(query)
            columns = list(result.keys())

            def batches() -> Any:
                if limit is not None:
                    yield result.fetchmany(limit)
                    return
                while chunk := result.fetchmany(BATCH_ROWS):
                    yield chunk

            n = _insert_batches(con, table, columns, batches(), row_column)
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatawheelError(
            f"{source.name}: cannot connect to the database at {shown} ({reason}); check that "
            "the server is running and reachable from this machine (host, port, firewall), "
            "and that the user, password and database name are right"
        ) from None
    except sa.exc.SQLAlchemyError as exc:
        what = f"query {source.query!r}" if source.query else f"table {source.table!r}"
        raise SourceError(f"{source.name}: cannot read {what} from {shown}: {exc}") from None
    finally:
        engine.dispose()
    return Loaded(columns, n)
