"""metrics.jsonl: torn lines are skipped by readers and never glued onto by writers; a
resumed run rewinds the file to its checkpoint so readers see one history."""

import json
from pathlib import Path

from moeheads.rundir.metrics import MetricsLog, read_metrics

TORN = '{"kind": "step", "step": 3, "lo'


def _write(path: Path, *records: dict, tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_reader_skips_a_torn_last_line_and_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    _write(path, {"kind": "step", "step": 1}, {"kind": "step", "step": 2}, tail=TORN)
    notes: list[str] = []
    records = read_metrics(path, report=notes.append)
    assert [r["step"] for r in records] == [1, 2]
    assert len(notes) == 1 and "line 3" in notes[0]


def test_reader_skips_a_damaged_middle_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"kind": "step", "step": 1}\n\xff\xfe garbage\n[1, 2]\n'
                     b'{"kind": "step", "step": 2}\n')
    notes: list[str] = []
    assert [r["step"] for r in read_metrics(path, report=notes.append)] == [1, 2]
    assert "2 unreadable line(s) (line 2, 3)" in notes[0]


def test_writer_never_glues_a_record_onto_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    _write(path, {"kind": "step", "step": 1}, tail=TORN)
    notes: list[str] = []
    log = MetricsLog(path, report=notes.append)
    log.write("step", step=2, loss=0.5)
    lines = path.read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
    assert notes and "incomplete last line" in notes[0]


def test_writer_leaves_a_clean_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    _write(path, {"kind": "step", "step": 1})
    notes: list[str] = []
    MetricsLog(path, report=notes.append).write("step", step=2)
    assert [r["step"] for r in read_metrics(path)] == [1, 2] and notes == []


def test_rewind_drops_records_after_the_checkpoint_step(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    _write(path, *({"kind": "step", "step": s} for s in range(1, 7)),
           {"kind": "epoch", "epoch": 1, "step": 4})
    log = MetricsLog(path)
    assert log.rewind(4) == 2
    assert [(r["kind"], r["step"]) for r in read_metrics(path)] == [
        ("step", 1), ("step", 2), ("step", 3), ("step", 4), ("epoch", 4)]
    assert log.rewind(4) == 0
