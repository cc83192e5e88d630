"""report.html from hand-written run directories: every section, overlays, guard events,
nothing fetched from the network; and a headless Chromium screenshot that shows the plots."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from sharpen.report.html import write_report


def _round(r: int, greedy: float, decisions: list | None = None, adapt: bool = False) -> dict:
    m = {"round": r, "splits": {s: {"greedy_accuracy": greedy, "pass_at_k": greedy + 0.2, "majority_accuracy": greedy + 0.05,
                                    "k": 8, "n": 100} for s in ("eval", "holdout")},
         "train": {} if r == 0 else {"samples": 800, "kept": 150 - 10 * r, "loss": 0.5 / r},
         "seconds": {"eval": 1.0}}
    if r:
        m["monitors"] = {"exploration": {"pass_at_k": 0.7 - 0.1 * r, "distinct_correct_per_prompt": 2.0 - 0.3 * r,
                                         "answer_entropy": 1.0 - 0.2 * r, "distinct_2": 0.5, "k": 8},
                         "exploitation": {"precision": 1.0, "recall": 0.4}, "balance": {"balance_score": 0.1 * r},
                         "data_yield": {"kept_per_prompt": 1.5, "prompts_without_data": 0.2},
                         "training": {"loss": 0.5 / r, "response_tokens": 10 + r}}
        m["audit"] = {"vote": {"precision": 0.8, "recall": 0.7, "auroc": 0.75, "auroc_within_prompt": 0.6}}
        m["decisions"] = decisions or []
    if adapt and r:
        m["adapt"] = {"temperature": 0.6 + 0.2 * r, "threshold": 0.9}
    return m


def _run(path, name: str, greedy: list[float], decisions: dict[int, list] | None = None, adapt: bool = False):
    for r, g in enumerate(greedy):
        d = path / "rounds" / str(r)
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps(_round(r, g, (decisions or {}).get(r), adapt)))
    (path / "config.yaml").write_text(f"name: {name}\nrounds: {len(greedy) - 1}\n")
    return path


@pytest.fixture
def two_runs(tmp_path):
    hack = [{"action": "stop", "monitor": "reward_hacking", "reason": "proxy reward (vote) rose +0.100 while eval fell 5.0%"}]
    a = _run(tmp_path / "b_star", "b_star", [0.3, 0.4, 0.45, 0.5], adapt=True)
    b = _run(tmp_path / "ttrl", "ttrl", [0.3, 0.35, 0.3], decisions={2: hack})
    return a, b


def test_report_has_every_section_and_is_self_contained(two_runs, tmp_path):
    a, _ = two_runs
    page = write_report(a).read_text()
    for heading in ("Held-out accuracy and pass@k", "Exploration", "Exploitation and training", "Signal quality",
                    "Guard events", "Rounds", "Resolved recipe"):
        assert heading in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 4  # accuracy, exploration, exploitation, audit
    assert "name: b_star" in page and "greedy_accuracy" in page and "No guard fired" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network


def test_several_runs_overlay_in_one_report_with_guard_events(two_runs, tmp_path):
    a, b = two_runs
    page = write_report([a, b], tmp_path / "both.html").read_text()
    assert "b_star, ttrl" in page and "name: ttrl" in page
    assert "reward_hacking" in page and "proxy reward (vote) rose" in page
    assert page.count("<tr><td>ttrl</td>") == 3 * 2 + 1  # rounds x splits in the table, and one guard event


def test_report_cli_writes_one_page_for_several_runs(two_runs, tmp_path, capsys, monkeypatch):
    from tests.conftest import run_cli

    a, b = two_runs
    code, out, _ = run_cli(capsys, monkeypatch, "report", a, b, "--out", tmp_path / "r.html")
    assert code == 0 and f"wrote {tmp_path / 'r.html'}" in out
    assert (tmp_path / "r.html").read_text() == write_report([a, b], tmp_path / "again.html").read_text()
    from tests.conftest import table_rows

    assert [r[0] for r in table_rows(out)].count("0") == 2  # each run's metrics table, from round 0


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="Debian's chromium is not installed (apt-get install -y chromium); the headless screenshot needs it")
def test_chromium_screenshot_shows_the_plots(two_runs, tmp_path):
    import matplotlib.image

    a, b = two_runs
    page = write_report([a, b], tmp_path / "both.html")
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1300,1600",
                    f"--screenshot={shot}", page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    img = matplotlib.image.imread(shot)
    assert img.shape[:2] == (1600, 1300)
    rgb = img[..., :3]
    # the plots' coloured lines: pixels far from grey (black text and white background are grey)
    colour = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3
    assert colour.mean() > 0.0005, "no coloured plot lines in the screenshot"
