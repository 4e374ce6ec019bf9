"""Bad inputs for the table reader: each is reported or quarantined, never dropped silently."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from datawheel.errors import ConfigError, DatawheelError, SourceError
from datawheel.tables import CleanSpec, TableSource, list_quarantined, run_clean
from datawheel.tables.read import detect_encoding, hide_password, load


def _rows(path: Path) -> list[tuple]:
    return duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


def test_wrong_column_count_is_quarantined_with_line(write, out):
    src = write("a.csv", "a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n")
    report = run_clean(src, CleanSpec(), out)
    assert _rows(report.clean_path) == [("1", "2", "3"), ("10", "11", "12")]
    assert report.rows_in == 4 and report.rejected_lines == 2
    bad = list_quarantined(out, "t")
    assert [(b["_line"], b["_raw_line"]) for b in bad] == [(3, "4,5"), (4, "6,7,8,9")]
    assert "MISSING COLUMNS" in bad[0]["_reasons"][0]
    assert "TOO MANY COLUMNS" in bad[1]["_reasons"][0]


def test_crlf_lines_are_quarantined_exactly_as_they_were(write, out):
    src = write("w.csv", "a,b,c\r\n1,2,3\r\n4,5\r\n6,7,8\r\n")
    report = run_clean(src, CleanSpec(), out)
    assert report.rejected_lines == 1
    (bad,) = list_quarantined(out, "t")
    assert (bad["_line"], bad["_raw_line"]) == (3, "4,5")  # no line break kept on either side


def test_broken_quoting_is_quarantined(write, out):
    src = write("q.csv", 'a,b\n1,"x"y\n2,"ok, fine"\n3,plain\n')
    report = run_clean(src, CleanSpec(), out)
    assert _rows(report.clean_path) == [("2", "ok, fine"), ("3", "plain")]
    bad = list_quarantined(out, "t", rule="read")
    assert len(bad) == 1 and bad[0]["_line"] == 2 and bad[0]["_raw_line"] == '1,"x"y'
    assert report.rows_clean + report.rows_quarantined == report.rows_in == 3


def test_unterminated_quote_at_end_is_quarantined(write, out):
    src = write("u.csv", 'a,b\n1,x\n2,"never closed\n')
    report = run_clean(src, CleanSpec(), out)
    assert _rows(report.clean_path) == [("1", "x")]
    assert report.rejected_lines == 1


def test_mixed_types_keep_original_text_and_quarantine_bad_values(write, out):
    src = write("m.csv", "id,amount\n1,12\n2,abc\n3,3.5\n4,\n")
    report = run_clean(src, CleanSpec(types={"amount": "double", "id": "integer"}), out)
    assert _rows(report.clean_path) == [(1, 12.0), (3, 3.5), (4, None)]
    (bad,) = list_quarantined(out, "t")
    assert bad["_row"] == 2 and bad["amount"] == "abc" and bad["id"] == "2"
    assert bad["_reasons"] == ["types: amount value abc is not double"]


def test_dates_in_two_formats(write, out):
    from datawheel.tables import Standardise

    src = write("d.csv", "id,day\n1,2024-03-05\n2,05/03/2024\n3,March 5\n")
    spec = CleanSpec(
        standardise=[Standardise(column="day", how="date", input_formats=["%Y-%m-%d", "%d/%m/%Y"])]
    )
    report = run_clean(src, spec, out)
    import datetime as dt

    assert [r[1] for r in _rows(report.clean_path)] == [dt.date(2024, 3, 5)] * 2
    (bad,) = list_quarantined(out, "t")
    assert bad["day"] == "March 5" and "standardise: day" in bad["_reasons"][0]


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-16"])
def test_non_utf8_file(write, out, encoding):
    text = (
        "name;city\nJosé;Zürich\nRenée;Besançon €\n"
        if encoding != "latin-1"
        else ("name;city\nJosé;Zürich\nRenée;Besançon\n")
    )
    src = write("enc.csv", text.encode(encoding))
    report = run_clean(src, CleanSpec(), out)
    rows = _rows(report.clean_path)
    assert rows[0] == ("José", "Zürich")
    assert rows[1][0] == "Renée"


def test_short_western_file_is_read_as_cp1252_not_a_lookalike_code_page(write, out):
    # charset-normalizer alone calls these bytes cp1250, where 0xC5 is "Ĺ", not "Å"
    text = "id;name;amount\n1;José;10,5\n2;Zoë;-3\n3;Åsa;7\n"
    src = write("nordic.csv", text.encode("cp1252"))
    report = run_clean(src, CleanSpec(), out)
    assert [r[1] for r in _rows(report.clean_path)] == ["José", "Zoë", "Åsa"]


def test_detect_encoding_utf8_and_cp1252(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes("a\nné\n".encode())
    assert detect_encoding(p) == "utf-8"


def test_empty_file_is_a_clear_error(write, out):
    src = write("empty.csv", b"")
    with pytest.raises(SourceError, match="is empty .* re-export"):
        run_clean(src, CleanSpec(), out)


def test_header_only_file_gives_an_empty_run(write, out):
    report = run_clean(write("h.csv", "a,b\n"), CleanSpec(rules=["a > b"]), out)
    assert report.rows_in == 0 and report.rows_clean == 0
    assert report.rules[0].render() == "a > b: kept 0 of 0 (100.0%)"


def test_missing_critical_column_names_the_columns(write, out):
    from datawheel.tables import DropMissing

    src = write("c.csv", "id,name\n1,a\n", critical=["email"])
    with pytest.raises(ConfigError, match="unknown column.*'email'.*columns are: id, name"):
        run_clean(src, CleanSpec(drop_missing=DropMissing()), out)


def test_database_down_names_url_without_password(out):
    url = "postgresql+psycopg://bob:s3cret@127.0.0.1:9/sales"
    src = TableSource(name="db", url=url, table="deals")
    with pytest.raises(DatawheelError) as info:
        run_clean(src, CleanSpec(), out)
    msg = str(info.value)
    assert "127.0.0.1:9" in msg and "s3cret" not in msg and "***" in msg
    assert "check that the server is running" in msg


def test_hide_password():
    assert hide_password("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def test_sqlite_table_and_query(tmp_path, out):
    db = tmp_path / "s.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE deals (id INTEGER, amount REAL, stage TEXT)")
        c.executemany("INSERT INTO deals VALUES (?, ?, ?)", [(1, 10.5, "won"), (2, -1, "lost")])
    src = TableSource(name="db", url=f"sqlite:///{db}", table="deals")
    report = run_clean(src, CleanSpec(types={"amount": "double"}, rules=["amount > 0"]), out)
    assert _rows(report.clean_path) == [("1", 10.5, "won")]
    q = TableSource(name="q", url=f"sqlite:///{db}", query="SELECT id FROM deals WHERE id > 1")
    assert _rows(run_clean(q, CleanSpec(), out).clean_path) == [("2",)]


def test_parquet_jsonl_and_excel(tmp_path, out):
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 1 AS id, 'a' AS s) TO '{tmp_path / 'x.parquet'}' (FORMAT parquet)")
    (tmp_path / "x.jsonl").write_text('{"id": 1, "s": "a"}\n{"id": 2, "s": null}\n')
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["id", "s"])
    book.active.append([1, "a"])
    book.active.append([2.5, None])
    book.save(tmp_path / "x.xlsx")
    pq = run_clean(TableSource(name="p", path=str(tmp_path / "x.parquet")), CleanSpec(), out)
    assert _rows(pq.clean_path) == [(1, "a")]
    js = run_clean(TableSource(name="j", path=str(tmp_path / "x.jsonl")), CleanSpec(), out)
    assert _rows(js.clean_path) == [(1, "a"), (2, None)]
    xl = run_clean(TableSource(name="x", path=str(tmp_path / "x.xlsx")), CleanSpec(), out)
    assert _rows(xl.clean_path) == [("1", "a"), ("2.5", None)]


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_lines_above_the_header_are_skipped_when_declared(write, out, encoding):
    text = "Sales report;;\nExported 01.05.2024 by Zoë;;\nid;amount;region\n1;5;Nord\n2;7;Süd\n"
    src = write("pre.csv", text.encode(encoding), skip_rows=2)
    report = run_clean(src, CleanSpec(rules=["region <> 'x'"]), out)
    assert report.columns == ["id", "amount", "region"]
    assert _rows(report.clean_path) == [("1", "5", "Nord"), ("2", "7", "Süd")]
    with pytest.raises(SourceError, match="no header at line 9; .*set skip_rows"):
        run_clean(write("pre2.csv", text.encode(encoding), skip_rows=8), CleanSpec(), out)


def test_excel_title_rows_and_repeated_header_names(tmp_path, out):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["Q1 orders"])
    book.active.append([])
    book.active.append(["id", "amount", "amount", None])
    book.active.append([1, 10, 12, "x"])
    book.save(tmp_path / "t.xlsx")
    src = TableSource(name="t", path=str(tmp_path / "t.xlsx"), skip_rows=2)
    report = run_clean(src, CleanSpec(), out)
    assert report.columns == ["id", "amount", "amount_1", "column4"]
    assert _rows(report.clean_path) == [("1", "10", "12", "x")]


def test_tsv_and_explicit_delimiter(write):
    con = duckdb.connect()
    loaded = load(con, write("t.tsv", "a\tb\n1\t2\n"))
    assert loaded.columns == ["a", "b"] and loaded.rows == 1
    con2 = duckdb.connect()
    loaded = load(con2, write("p.txt", "a|b\n1|2\n", delimiter="|"))
    assert con2.execute("SELECT a, b FROM raw").fetchall() == [("1", "2")]


def test_unknown_extension_asks_for_format(write):
    with pytest.raises(ConfigError, match="set format: to one of csv, tsv"):
        load(duckdb.connect(), write("data.bin", "a\n1\n"))


def test_source_needs_exactly_one_origin():
    with pytest.raises(ValueError, match="exactly one of path"):
        TableSource(name="x")
    with pytest.raises(ValueError, match="exactly one of table or query"):
        TableSource(name="x", url="sqlite://")
    with pytest.raises(ValueError, match="Extra inputs"):
        TableSource(name="x", path="a.csv", delimter=",")  # type: ignore[call-arg]


def test_preview_reads_only_the_first_rows_of_every_kind_of_source(tmp_path):
    import sqlite3

    import openpyxl

    from datawheel.tables.read import preview

    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT range AS id, 'r' || range AS s FROM range(1000)) "
        f"TO '{tmp_path / 'x.parquet'}' (FORMAT parquet)"
    )
    (tmp_path / "x.csv").write_text("id,s\n" + "".join(f"{i},r{i}\n" for i in range(1000)))
    (tmp_path / "x.jsonl").write_text("".join(f'{{"id": {i}, "s": "r{i}"}}\n' for i in range(1000)))
    book = openpyxl.Workbook()
    book.active.append(["id", "s"])
    for i in range(1000):
        book.active.append([i, f"r{i}"])
    book.save(tmp_path / "x.xlsx")
    db = sqlite3.connect(tmp_path / "x.db")
    db.execute("CREATE TABLE t (id INTEGER, s TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"r{i}") for i in range(1000)])
    db.commit()
    db.close()
    sources = [TableSource(name=n, path=str(tmp_path / f"x.{n}")) for n in ("csv", "parquet")]
    sources += [TableSource(name=n, path=str(tmp_path / f"x.{n}")) for n in ("jsonl", "xlsx")]
    sources.append(TableSource(name="db", url=f"sqlite:///{tmp_path / 'x.db'}", table="t"))
    for src in sources:
        peek = preview(src, rows=3)
        assert peek.columns == ["id", "s"], src.name
        assert peek.rows == [("0", "r0"), ("1", "r1"), ("2", "r2")], src.name
        assert peek.hint is None


@pytest.mark.parametrize(
    "text",
    [
        b"Sales report\r\nid,amount\n1,5\n2,7\n",  # a title written on Windows, data on Linux
        b"Sales report\nid,amount\r\n1,5\r\n2,7\r\n",
        b"Sales report\rid,amount\n1,5\n2,7\n",  # an old Mac title line
    ],
)
def test_skip_rows_whatever_ends_the_title_line(write, out, text):
    report = run_clean(write("pre.csv", text, skip_rows=1), CleanSpec(), out)
    assert report.columns == ["id", "amount"]
    assert _rows(report.clean_path) == [("1", "5"), ("2", "7")]


def test_an_excel_workbook_named_csv_is_read_as_one(tmp_path, out):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["id", "amount"])
    book.active.append([1, 5])
    book.save(tmp_path / "export.csv")  # what some tools do
    report = run_clean(TableSource(name="x", path=str(tmp_path / "export.csv")), CleanSpec(), out)
    assert _rows(report.clean_path) == [("1", "5")]
    (tmp_path / "old.csv").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    with pytest.raises(SourceError, match=r"old Excel \(\.xls\) workbook, not text: .*save it"):
        run_clean(TableSource(name="o", path=str(tmp_path / "old.csv")), CleanSpec(), out)
