"""Reproduction verdicts on tables built from known numbers: agree, disagree, n = 1 (cannot judge),
not comparable on stand-in data, and the paper's claims."""

import json
import math

import pandas as pd
import pytest

from rarts.report.reproduction import reproduction_main, verdict
from rarts.report.tables import table1, table4


def test_the_rule_by_hand():
    # RARTS 2.65 ± 0.07 over 5 runs; ours 2.70 ± 0.05 over 3: se = sqrt(.05²/3 + .07²/5) = 0.0426
    diff, se, v = verdict(2.70, 0.05, 3, 2.65, 0.07, 5)
    assert se == pytest.approx(math.sqrt(0.05 ** 2 / 3 + 0.07 ** 2 / 5)) and diff == pytest.approx(0.05)
    assert v == "agrees"
    assert verdict(3.00, 0.05, 3, 2.65, 0.07, 5)[2] == "disagrees"  # 0.35 > 2 · 0.0426
    assert verdict(25.0, math.nan, 1, 25.9, math.nan, math.nan)[2].startswith("cannot judge")  # n = 1 both
    assert verdict(11.0, 1.0, 3, 11.48, math.nan, 3)[2] == "agrees (the paper quotes no std)"
    assert verdict(2.70, math.nan, 1, 2.65, 0.07, 5)[2] == "agrees (ours n = 1)"
    assert verdict(2.70, 0.05, 3, 2.65, 0.07, 5, "stand-in data")[2] == "not comparable: stand-in data"


def _metrics(tmp_path, name, err):
    d = tmp_path / "train" / name
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"test_error": err, "params_M": 3.2, "device": "gpu",
                                                "history": [{"classes": 10}]}))
    return d / "metrics.json"


def test_verdicts_on_tables_built_from_known_numbers(tmp_path):
    inputs = [_metrics(tmp_path, f"rarts-seed{s}", e) for s, e in enumerate((2.65, 2.70, 2.75))]
    inputs += [_metrics(tmp_path, f"darts2-seed{s}", e) for s, e in enumerate((3.30, 3.35, 3.40))]
    inputs += [_metrics(tmp_path, "DARTS_V2", 2.9)]
    table1({"standin": False, "protocol": "searches", "seeds": [0, 1, 2]}, inputs, tmp_path / "table1.csv",
           tmp_path / "table1.md")
    scores = [{"dataset": "cifar10", "algorithm": a, "test_error": e, "skip_ratio": r, "source": "nats-bench",
               "arch": "x", "chance_error": 90.0} for a, es, r in (("rarts", (10.5, 11.5, 12.0), 0.0),
                                                                  ("darts1", (40.0, 41.0, 39.5), 1.0))
              for e in es]
    (tmp_path / "scores.json").write_text(json.dumps(scores))
    table4({"standin": False, "split": "nats-bench"}, [tmp_path / "scores.json"], tmp_path / "table4.csv",
           tmp_path / "table4.md")
    pd.DataFrame({"algorithm": ["rarts", "rarts", "darts1", "darts2"], "skip_connect_normal": [1, 0, 4, 5]}).to_csv(
        tmp_path / "skip_connections.csv", index=False)
    df = reproduction_main({"standin": False}, [tmp_path / "table1.csv", tmp_path / "table4.csv",
                                                tmp_path / "skip_connections.csv"], tmp_path / "r.csv", tmp_path / "r.md",
                           tmp_path / "r.rst")
    got = dict(zip(df.row, df.verdict))
    # the report's first page: the claims and every verdict, as reStructuredText docutils renders
    from docutils.core import publish_parts

    page = publish_parts((tmp_path / "r.rst").read_text(), writer_name="html",
                         settings_overrides={"report_level": 2, "halt_level": 2})["html_body"]
    assert page.count("<table") == 2  # the verdicts counted per table, and the claims
    assert "<td>table1</td>" in page and "<td>table4</td>" in page and "fewer skip connections" in page
    assert len((tmp_path / "r.rst").read_text().splitlines()) < 40  # it fits the report's first screen
    assert got["RARTS"] == "agrees"  # 2.70 ± 0.05 (n 3) vs 2.65 ± 0.07 (n 5)
    assert got["DARTS-2"] == "disagrees (the paper's n not stated: its std taken as one run's)"  # 3.35 vs 2.76 ± 0.09
    assert got["DARTS-2 (published DARTS_V2 cell, retrained)"] == "agrees (ours n = 1)"  # 2.9 vs 2.76 ± 0.09
    assert got["cifar10 · RARTS"] == "agrees (the paper quotes no std)"  # 11.33 ± 0.76 (n 3) vs 11.48 (n 3)
    assert got["cifar10 · DARTS-1"] == "agrees (the paper quotes no std)"  # 40.17 vs 40.16
    row = df[df.row == "RARTS"].iloc[0]
    assert (row.ours_n, row.paper_n, row.paper_std) == (3, 5, 0.07) and row.difference == pytest.approx(0.05)
    claims = df[df.table == "claim"].set_index("row").verdict
    assert claims.filter(like="fewer skip connections").iloc[0].startswith("shown")
    assert claims.filter(like="RARTS errs less").iloc[0].startswith("shown")
    assert "cannot judge" not in " ".join(df.verdict) and "Verdict counts" in (tmp_path / "r.md").read_text()
    stand_in = reproduction_main({"standin": True}, [tmp_path / "table1.csv"], tmp_path / "s.csv", tmp_path / "s.md")
    assert set(stand_in.verdict) == {"not comparable: stand-in data"}
    assert "not comparable: the runs used stand-in data" in (tmp_path / "s.md").read_text()


def test_a_tables_csv_says_which_data_it_was_made_from(tmp_path):
    """A table's Markdown says "STAND-IN" or "REHEARSAL"; its CSV, which scripts read, said neither: a
    rehearsal's results/table4.csv looked like a real run's. Each table's CSV carries the two flags."""
    scores = [{"dataset": "cifar10", "algorithm": "rarts", "test_error": 11.0, "skip_ratio": 0.0,
               "source": "nats-bench", "arch": "x", "chance_error": 90.0}]
    (tmp_path / "scores.json").write_text(json.dumps(scores))
    for name, spec in {"real": {}, "standin": {"standin": True}, "rehearsal": {"rehearsal": True}}.items():
        table4({"split": "nats-bench", **spec}, [tmp_path / "scores.json"], tmp_path / f"{name}.csv",
               tmp_path / f"{name}.md")
        df = pd.read_csv(tmp_path / f"{name}.csv")
        assert df.standin.tolist() == [name == "standin"] * len(df), name
        assert df.rehearsal.tolist() == [name == "rehearsal"] * len(df), name
