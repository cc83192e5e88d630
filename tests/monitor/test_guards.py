import pytest

from sharpen.monitor.guards import forgetting_decision, hacking_check
from sharpen.monitor.watch import start_round, validate_monitors, verdict
from sharpen.errors import UserError


def test_forgetting_rolls_back_to_the_best_round_past_the_margin():
    earlier = [(0, 0.60), (1, 0.70), (2, 0.65)]
    stats, d = forgetting_decision(0.62, earlier, margin=0.05, reference="best", action="rollback", r=3)
    assert stats["best_round"] == 1 and stats["drop"] == pytest.approx(0.08)
    assert d.action == "rollback" and d.to_round == 1 and "round 1" in d.reason
    _, d = forgetting_decision(0.66, earlier, margin=0.05, reference="best", action="rollback", r=3)
    assert d is None  # within the margin
    _, d = forgetting_decision(0.58, earlier, margin=0.05, reference="initial", action="stop", r=3)
    assert d is None  # 0.60 - 0.58 is within the margin of round 0
    _, d = forgetting_decision(0.50, earlier, margin=0.05, reference="initial", action="stop", r=3)
    assert d.action == "stop"
    _, d = forgetting_decision(0.50, earlier, margin=0.05, reference="best", action="warn", r=3)
    assert d.action == "continue" and "below" in d.reason


def test_reward_hacking_aligns_the_proxy_with_the_policy_that_earned_it():
    # round r's samples come from policy r-1: proxy[2] - proxy[1] is policy 1 vs 0,
    # compared with greedy[1] - greedy[0]
    assert hacking_check([None, 0.3], [0.5, 0.4], 0, 0) is None  # too early: one proxy value
    c = hacking_check([None, 0.3, 0.6], [0.5, 0.4, 0.45], 0, 0)
    assert c["policy_round"] == 1 and c["flagged"] and c["proxy_rise"] == pytest.approx(0.3)
    assert not hacking_check([None, 0.3, 0.6], [0.5, 0.55, 0.45], 0, 0)["flagged"]  # ground truth rose too
    assert not hacking_check([None, 0.3, 0.6], [0.5, 0.4, 0.45], 0.5, 0)["flagged"]  # rise under min_rise


def test_verdict_and_the_round_the_next_one_starts_from():
    assert verdict({"decisions": [{"action": "continue"}]}) is None and start_round(None, 1) == 0
    m = {"decisions": [{"action": "rollback", "to_round": 1, "monitor": "forgetting", "reason": "r"},
                       {"action": "continue", "monitor": "reward_hacking", "reason": "w"}]}
    assert verdict(m)["action"] == "rollback" and start_round(m, 4) == 1
    assert verdict({"decisions": [*m["decisions"], {"action": "stop"}]})["action"] == "stop"


def test_monitors_merge_into_the_default_set_with_one_line_errors():
    cfgs = validate_monitors([{"kind": "exploration", "k": 2}, {"kind": "forgetting", "anchor": {"name": "arithmetic", "ops": ["add"]}},
                              {"kind": "training", "enabled": False}])
    kinds = [c.kind for c in cfgs]
    assert kinds.count("exploration") == 1 and "forgetting" in kinds
    assert next(c for c in cfgs if c.kind == "exploration").k == 2
    assert not next(c for c in cfgs if c.kind == "training").enabled
    with pytest.raises(UserError, match=r"monitors\.0\.kind: unknown monitor 'nope'"):
        validate_monitors([{"kind": "nope"}])
    with pytest.raises(UserError, match=r"monitors\.0\.margin"):
        validate_monitors([{"kind": "forgetting", "anchor": {"name": "arithmetic"}, "margin": 2}])
    with pytest.raises(UserError, match=r"monitors\.0\.anchor"):
        validate_monitors([{"kind": "forgetting", "anchor": {"name": "arithmetic", "ops": ["div"]}}])
