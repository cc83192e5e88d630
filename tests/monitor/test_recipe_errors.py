"""Bad monitor, adapt and tracking fields fail before any compute: one line naming the field, exit code 2."""
import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("override, expect", [
    ("monitors=[{kind: nope}]", "monitors.0.kind: unknown monitor 'nope'"),
    ("monitors=[{kind: forgetting}]", "monitors.0.anchor: Field required"),
    ("monitors=[{kind: reward_hacking, action: rollback}]", "monitors.0.action"),
    ("monitors=[{kind: exploration, kk: 2}]", "monitors.0.kk: unknown key"),
    ("tracking=wandb", "tracking"),
    ("adapt.temperatures=[]", "adapt.temperatures"),
])
def test_bad_monitor_fields_are_one_line_errors(capsys, monkeypatch, override, expect):
    code, _, err = run_cli(capsys, monkeypatch, "run", "b_star" if override.startswith("adapt") else "star", override)
    assert code == 2 and expect in err and len(err.strip().splitlines()) == 1, err


def test_adapt_needs_a_builder_with_a_threshold(capsys, monkeypatch):
    code, _, err = run_cli(capsys, monkeypatch, "run", "b_star", "build={kind: best_of_n}")
    assert code == 2 and "adapt: build.kind 'best_of_n' has no threshold" in err
