"""CSV exports neutralise spreadsheet formulas (accounts/exports.py)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from accounts.exports import csv_response, csv_safe


def test_text_that_a_spreadsheet_would_run_is_made_text():
    assert csv_safe('=HYPERLINK("http://evil.example","click")') == (
        '\'=HYPERLINK("http://evil.example","click")'
    )
    assert csv_safe("+1+1") == "'+1+1"
    assert csv_safe("-2+3") == "'-2+3"
    assert csv_safe("@SUM(A1)") == "'@SUM(A1)"
    assert csv_safe("\t=1") == "'\t=1"
    assert csv_safe("Export is slow") == "Export is slow"
    # numbers stay numbers, even negative ones; None is an empty cell
    assert csv_safe(Decimal("-120.00")) == Decimal("-120.00")
    assert csv_safe(-3) == -3
    assert csv_safe(None) == ""
    # a plain number carried as text (the KPI engine's JSON) is a number, not a formula
    assert csv_safe("-120.00") == "-120.00" and csv_safe("-3") == "-3"
    assert csv_safe("-3-1") == "'-3-1" and csv_safe("-1e3") == "'-1e3"
    assert csv_safe("-1+cmd|' /C calc'!A0") == "'-1+cmd|' /C calc'!A0"


def test_full_width_signs_and_nul_are_made_text_too():
    """Excel in an East Asian locale reads a full-width sign as the ASCII one: "＝1+1" is a
    formula there. A NUL before the sign hides it from a check of the first character."""
    assert csv_safe('＝HYPERLINK("http://evil.example","click")') == (
        '\'＝HYPERLINK("http://evil.example","click")'
    )
    assert csv_safe("＋1+1") == "'＋1+1"
    assert csv_safe("－1+1") == "'－1+1"
    assert csv_safe("＠SUM(A1)") == "'＠SUM(A1)"
    assert csv_safe("\0=1+1") == "'\0=1+1"
    # digits of another script are not a plain number: text, its sign neutralised
    assert csv_safe("-１２") == "'-１２"
    assert csv_safe("１２") == "１２"  # no sign: nothing to run


def test_moments_and_file_names_read_as_a_person_expects():
    import datetime as dt

    from accounts.exports import export_filename, moment_cell

    paris = dt.timezone(dt.timedelta(hours=1))
    # 15:05 in Paris is 14:05 UTC; no "T", no offset: a spreadsheet reads it as a moment
    assert moment_cell(dt.datetime(2026, 11, 22, 15, 5, tzinfo=paris)) == "2026-11-22 14:05:00"
    assert moment_cell(None) == ""
    name = export_filename("Survey responses", "Segment: SMB", dt.date(2026, 3, 1), "to",
                           dt.date(2026, 3, 31))  # fmt: skip
    assert name == "survey-responses-segment-smb-2026-03-01-to-2026-03-31.csv"
    assert export_filename("kpis", "", dt.date(2026, 3, 31)) == "kpis-2026-03-31.csv"


def test_the_streamed_file_holds_the_neutralised_cells():
    response = csv_response(
        "comments.csv",
        ["account", "comment", "delta"],
        [["Acme", "=1+1", Decimal("-5.00")], ["<b>Globex</b>", "fine", 3]],
    )
    assert response["Content-Disposition"] == 'attachment; filename="comments.csv"'
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["account", "comment", "delta"],
        ["Acme", "'=1+1", "-5.00"],
        ["<b>Globex</b>", "fine", "3"],  # CSV is not HTML: markup is data, kept as typed
    ]


def test_kpi_figures_are_numbers_a_person_can_read():
    """Money to the cent; ratios to four places, no trailing zeros; never "-0" or "1E+2"."""
    from accounts.exports import figure_cell

    # 100 × 1000 / 1300 = 76.923076…; 1 / 27 = 0.037037…, as the engine's Decimal divides
    assert figure_cell(Decimal(100) * 1000 / 1300, money=False) == Decimal("76.9231")
    assert str(figure_cell(Decimal(1) / 27 * -100, money=False)) == "-3.7037"
    assert str(figure_cell("100.0000000001", money=False)) == "100"
    assert str(figure_cell("-0.00001", money=False)) == "0"
    assert str(figure_cell(84.76347222222222, money=False)) == "84.7635"  # a float: hours
    # a CLV of 1,441,133.168 (the engine's 28 digits): to the cent; 1500 keeps its cents
    assert str(figure_cell("1441133.168000000000000000000", money=True)) == "1441133.17"
    assert str(figure_cell(1500, money=True)) == "1500.00"
    assert figure_cell(None, money=True) == "" and figure_cell("", money=False) == ""
