"""The primary endpoint: Treg % at baseline and month 6, its change per subject and for the study.

Every number here is worked out by hand in the test's comment or name.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from lims.signatures import SignatureRequest
from samples.models import Subject
from samples.plots import SlopeLine, nice_ticks, slopegraph_svg
from samples.selectors import add_months, study_endpoint
from samples.services import (
    assay_result_record,
    disease_activity_record,
    follow_up_sample_collect,
    subject_answer_eligibility,
    subject_confirm_eligibility,
    subject_register,
)
from tests.factories import subject_dates

BASELINE_DAY = dt.date(2025, 1, 15)


def enrolled_in_january_2025(study, clinician, password) -> Subject:
    """Screened on 5 January 2025, so that baseline and month-6 dates are fixed and in the past."""
    subject = subject_register(
        study=study, acting_user=clinician, sex="F", **subject_dates(screening=dt.date(2025, 1, 5))
    )
    subject_answer_eligibility(
        subject=subject,
        acting_user=clinician,
        answers={c.pk: c.kind == "inclusion" for c in subject.protocol.criteria.all()},
    )
    return subject_confirm_eligibility(
        subject=subject,
        acting_user=clinician,
        signature=SignatureRequest(clinician.username, password, "eligibility_confirmed", "checklist reviewed"),
    )


def treg_at(subject, clinician, month: int, day: dt.date, value: str) -> None:
    """The visit's blood sample, collected at 10:00 site time on ``day``, with its Treg %."""
    sample = follow_up_sample_collect(
        subject=subject,
        visit=subject.protocol.visits.get(month=month),
        acting_user=clinician,
        collected_at=timezone.make_aware(dt.datetime.combine(day, dt.time(10, 0))),
    )
    treg = subject.protocol.analytes.get(primary=True)
    assay_result_record(sample=sample, analyte=treg, value=value, acting_user=clinician)


@pytest.fixture
def paired(study, clinician, password):
    """Make subjects with a baseline and a month-6 Treg %, six calendar months apart unless told otherwise."""

    def make(baseline: str, month6: str, *, month6_day: dt.date | None = None) -> Subject:
        subject = enrolled_in_january_2025(study, clinician, password)
        treg_at(subject, clinician, 0, BASELINE_DAY, baseline)
        treg_at(subject, clinician, 6, month6_day or dt.date(2025, 7, 15), month6)
        return subject

    return make


def endpoint_url(study) -> str:
    return reverse("samples:study-endpoint", args=[study.code])


class _Table(HTMLParser):
    """The text of each body row of one table, found by its id."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.in_body, self.rows = table_id, False, False, []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append([])
        elif self.in_body and tag == "td":
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "table" and self.inside:
            self.inside = self.in_body = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def page_rows(html: str, table_id: str = "endpoint-table") -> list[list[str]]:
    parser = _Table(table_id)
    parser.feed(html)
    return parser.rows


def test_treg_rising_from_4_2_to_6_3_percent_is_plus_2_1_points_and_plus_50_percent(client, qa_officer, study, paired):
    subject = paired("4.2", "6.3")
    row = study_endpoint(study).rows[0]
    assert (row.change.absolute, row.change.relative_percent) == (Decimal("2.1"), Decimal("50.0"))
    client.force_login(qa_officer)
    response = client.get(endpoint_url(study))
    assert response.status_code == 200
    assert page_rows(response.content.decode()) == [
        [subject.code, "2025-01-15", "4.20", "2025-07-15", "6.30", "+2.10", "+50.0", "yes", "yes"]
    ]


def test_a_baseline_of_zero_has_no_relative_change_and_shows_a_dash(client, qa_officer, study, paired):
    subject = paired("0", "1.5")
    row = study_endpoint(study).rows[0]
    assert row.change.relative_percent is None
    client.force_login(qa_officer)
    response = client.get(endpoint_url(study))
    assert response.status_code == 200
    assert page_rows(response.content.decode()) == [
        [subject.code, "2025-01-15", "0.00", "2025-07-15", "1.50", "+1.50", "—", "yes", "yes"]
    ]
    summary = page_rows(response.content.decode(), "endpoint-summary")
    assert summary == [["1", "+1.50", "+1.50", "—"], ["0", "—", "—", "—"]]


def test_the_summary_of_three_subjects_is_their_n_mean_median_and_sd(client, qa_officer, study, paired):
    paired("4.2", "6.3")  # +2.1 points, +50.0 %
    paired("5.0", "6.0")  # +1.0 points, +20.0 %
    paired("4.0", "3.5")  # −0.5 points, −12.5 %
    report = study_endpoint(study)
    # Points: mean 2.6/3 = 0.867; median 1.0; SD √(((1.2333)² + (0.1333)² + (−1.3667)²)/2) = √1.7033 = 1.305.
    assert report.absolute.formatted(2) == {"n": "3", "mean": "+0.87", "median": "+1.00", "sd": "1.31"}
    # Percent: mean 57.5/3 = 19.17; median 20.0; SD √((30.833² + 0.833² + 31.667²)/2) = √977.08 = 31.26.
    assert report.relative.formatted(1) == {"n": "3", "mean": "+19.2", "median": "+20.0", "sd": "31.3"}
    client.force_login(qa_officer)
    summary = page_rows(client.get(endpoint_url(study)).content.decode(), "endpoint-summary")
    assert summary == [["3", "+0.87", "+1.00", "1.31"], ["3", "+19.2", "+20.0", "31.3"]]


def test_one_subject_has_a_mean_and_median_but_no_sd(study, paired):
    paired("4.2", "6.3")
    assert study_endpoint(study).absolute.formatted(2) == {"n": "1", "mean": "+2.10", "median": "+2.10", "sd": "—"}


def test_a_subject_without_a_month_6_value_is_listed_but_not_summarised(study, clinician, password):
    subject = enrolled_in_january_2025(study, clinician, password)
    treg_at(subject, clinician, 0, BASELINE_DAY, "4.2")
    report = study_endpoint(study)
    assert [c.text for c in report.rows[0].cells()] == [
        subject.code,
        "2025-01-15",
        "4.20",
        "—",
        "—",
        "—",
        "—",
        "yes",
        "—",
    ]
    assert report.absolute.n == 0


def test_the_page_draws_the_paired_plot_with_every_subject(client, qa_officer, study, paired):
    up, down = paired("4.2", "6.3"), paired("4.0", "3.5")
    client.force_login(qa_officer)
    page = client.get(endpoint_url(study)).content.decode()
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert '<title id="endpoint-plot-title">Treg at Baseline and Month 6, per subject (RA-MSC)</title>' in svg
    assert f">{up.code}</text>" in svg
    assert f">{down.code}</text>" in svg
    assert "Treg (%)" in svg
    assert ">Increase</text>" in svg
    assert ">Decrease</text>" in svg


def test_the_csv_has_exactly_the_rows_of_the_page_table(client, qa_officer, study, paired, clinician, password):
    paired("4.2", "6.3")
    paired("0", "1.5")
    paired("4.0", "3.5", month6_day=dt.date(2025, 8, 14))
    baseline_only = enrolled_in_january_2025(study, clinician, password)
    treg_at(baseline_only, clinician, 0, BASELINE_DAY, "3.3333")
    client.force_login(qa_officer)
    page = page_rows(client.get(endpoint_url(study)).content.decode())
    response = client.get(endpoint_url(study) + "?format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "subject",
        "baseline_date",
        "baseline_treg_percent",
        "month6_date",
        "month6_treg_percent",
        "change_points",
        "change_percent",
        "baseline_in_window",
        "month6_in_window",
    ]
    # The CSV leaves a missing value empty where the page shows a dash; every number is the same text.
    assert rows[1:] == [[cell.replace("—", "") for cell in row] for row in page]
    assert len(rows[1:]) == 4
    assert rows[4][2] == "3.33"


def test_a_month_6_sample_30_days_after_its_target_is_outside_its_14_day_window(client, qa_officer, study, paired):
    late = paired("4.2", "6.3", month6_day=dt.date(2025, 8, 14))  # target 15 July + 30 days
    on_edge = paired("4.2", "6.3", month6_day=dt.date(2025, 7, 29))  # target + 14 days: still inside
    report = study_endpoint(study)
    by_code = {row.subject.code: row for row in report.rows}
    assert by_code[late.code].endpoint_target == dt.date(2025, 7, 15)
    assert by_code[late.code].endpoint.in_window is False
    assert by_code[on_edge.code].endpoint.in_window is True
    client.force_login(qa_officer)
    page = client.get(endpoint_url(study)).content.decode()
    assert '<span class="status status-outside" title="target 2025-07-15">no</span>' in page


def test_das28_is_shown_at_both_visits(client, qa_officer, study, paired, clinician):
    subject = paired("4.2", "6.3")
    for month, tender in ((0, 10), (6, 2)):
        disease_activity_record(
            subject=subject,
            visit=subject.protocol.visits.get(month=month),
            acting_user=clinician,
            assessed_on=BASELINE_DAY if month == 0 else dt.date(2025, 7, 15),
            tender=tender,
            swollen=2,
            esr_mm_h="20",
            patient_vas_mm=40,
        )
    client.force_login(qa_officer)
    page = client.get(endpoint_url(study)).content.decode()
    # Baseline: 0.56·√10 + 0.28·√2 + 0.70·ln 20 + 0.014·40 = 1.7709 + 0.3960 + 2.0970 + 0.56 = 4.8239 → 4.82.
    # Month 6: 0.56·√2 + 0.28·√2 + 0.70·ln 20 + 0.014·40 = 0.7920 + 0.3960 + 2.0970 + 0.56 = 3.8449 → 3.84.
    assert page_rows(page, "endpoint-das28") == [
        [subject.code, "4.82 Moderate (> 3.2–5.1)", "3.84 Moderate (> 3.2–5.1)"]
    ]


def test_an_outsider_cannot_see_the_endpoint_and_an_anonymous_visitor_must_log_in(client, outsider, study):
    assert client.get(endpoint_url(study)).status_code == 302
    client.force_login(outsider)
    assert client.get(endpoint_url(study)).status_code == 403
    assert client.get(endpoint_url(study) + "?format=csv").status_code == 403


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (dt.date(2025, 1, 15), 6, dt.date(2025, 7, 15)),
        (dt.date(2025, 8, 31), 6, dt.date(2026, 2, 28)),
        (dt.date(2023, 8, 31), 6, dt.date(2024, 2, 29)),
        (dt.date(2025, 12, 31), 1, dt.date(2026, 1, 31)),
        (dt.date(2025, 3, 31), 12, dt.date(2026, 3, 31)),
    ],
)
def test_calendar_months_are_added_with_the_day_clamped_to_the_month_end(start, months, expected):
    assert add_months(start, months) == expected


def test_the_slopegraph_draws_decreases_dashed_and_escapes_every_label():
    svg = slopegraph_svg(
        [SlopeLine("<A&B>", Decimal("4"), Decimal("6")), SlopeLine("S-2", Decimal("5"), Decimal("3"))],
        title="Treg <test>",
        y_label="Treg (%)",
        left_label="Baseline",
        right_label="Month 6",
    )
    assert "&lt;A&amp;B&gt;" in svg
    assert "<A&B>" not in svg
    assert '<title id="slopegraph-title">Treg &lt;test&gt;</title>' in svg
    increase = svg[svg.index('<g class="subject increase">') :]
    decrease = svg[svg.index('<g class="subject decrease">') :]
    assert "stroke-dasharray" not in increase[: increase.index("</g>")]
    assert 'stroke-dasharray="8 5"' in decrease[: decrease.index("</g>")]


def test_ticks_are_round_numbers_covering_the_values():
    assert nice_ticks(3.5, 6.3) == [3, 4, 5, 6, 7]
    assert nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(5, 5) == [4, 4.5, 5, 5.5, 6]
