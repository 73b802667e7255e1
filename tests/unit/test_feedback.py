"""Feedback's pure parts: the Prometheus counter's bounded labels and the CSV export's formula guard."""

from __future__ import annotations

import csv
import io

from prometheus_client import REGISTRY

from chat.api.feedback import CsvRenderer, safe_cell
from monitoring import metrics


def value(**labels: str) -> float:
    return REGISTRY.get_sample_value("chat_agent_feedback_total", labels) or 0.0


def test_feedback_is_counted_per_agent_and_rating_with_bounded_labels():
    before = (
        value(agent="helper", rating="up"),
        value(agent="helper", rating="cleared"),
        value(agent="other", rating="other"),
    )
    metrics.agent_feedback("helper", "up")
    metrics.agent_feedback("helper", "cleared")
    # Neither an agent key outside the label alphabet nor an unknown rating becomes a label value of its own.
    metrics.agent_feedback("Robert'); DROP TABLE--" * 3, "sideways")
    after = (
        value(agent="helper", rating="up"),
        value(agent="helper", rating="cleared"),
        value(agent="other", rating="other"),
    )
    assert [b - a for a, b in zip(before, after)] == [1, 1, 1]


def test_csv_cells_that_a_spreadsheet_would_run_are_defused():
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(text) == "'" + text
    for text in ("fine", "1-2", "", "a=b"):
        assert safe_cell(text) == text
    assert safe_cell(None) == ""


def test_the_csv_renderer_writes_a_header_and_one_row_per_rating():
    page = {"results": [{"id": 1, "comment": '=HYPERLINK("http://x")', "rating": "up", "userId": "a,b"}]}
    rows = list(csv.reader(io.StringIO(CsvRenderer().render(page).decode())))
    assert rows[0][:3] == ["id", "workspaceId", "sessionId"]
    row = dict(zip(rows[0], rows[1]))
    assert row["comment"] == '\'=HYPERLINK("http://x")' and row["userId"] == "a,b" and row["rating"] == "up"
    errors = list(csv.reader(io.StringIO(CsvRenderer().render({"error": "=no", "code": "forbidden"}).decode())))
    assert errors == [["error", "'=no"], ["code", "forbidden"]]
