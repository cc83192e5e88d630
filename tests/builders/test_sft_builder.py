from sharpen.builders.sft import BestOfNConfig, SFTBuildConfig, best_of_n, rejection_sample, sft_set
from sharpen.registry import BUILDERS


def test_rejection_sampling_keeps_correct_dedupes_and_caps(make_scored):
    batch = [
        make_scored("a", 0, "x1", 1.0), make_scored("a", 1, "x2", 0.0), make_scored("a", 2, "x1", 1.0),
        make_scored("a", 3, "x3", 1.0), make_scored("a", 4, "x4", 1.0),
        make_scored("b", 0, "y1", 0.0), make_scored("b", 1, "y2", 0.0),
        make_scored("c", 0, "z1", 1.0),
    ]
    built = rejection_sample(batch, threshold=1.0, dedupe=True, max_per_prompt=2)
    assert [(e.prompt, e.completion) for e in built.data] == [("qa=", "x1"), ("qa=", "x3"), ("qc=", "z1")]
    assert built.stats == {"kept": 3, "prompts_with_kept": 2, "dropped_duplicates": 1, "dropped_by_cap": 1}
    no_dedupe = rejection_sample(batch, dedupe=False)
    assert [e.completion for e in no_dedupe.data] == ["x1", "x1", "x3", "x4", "z1"]


def test_threshold_keeps_partial_credit_and_registered_builder_uses_config(make_scored):
    batch = [make_scored("a", 0, "x1", 0.5), make_scored("a", 1, "x2", 0.2), make_scored("a", 2, "x3", 0.9)]
    built = sft_set(batch, SFTBuildConfig(threshold=0.5), None)
    assert [e.completion for e in built.data] == ["x3", "x1"]  # highest reward first
    assert BUILDERS.get("sft").fn is sft_set


def test_best_of_n_keeps_top_k_regardless_of_correctness(make_scored):
    batch = [make_scored("a", 0, "x1", -3.0), make_scored("a", 1, "x2", -1.0), make_scored("a", 2, "x3", -1.0),
             make_scored("b", 0, "y1", -7.0), make_scored("b", 1, "y1", -7.0)]
    top1 = best_of_n(batch, BestOfNConfig(), None)
    assert [e.completion for e in top1.data] == ["x2", "y1"]  # tie at -1.0 goes to the earlier sample
    top2 = best_of_n(batch, BestOfNConfig(k=2), None)
    assert [e.completion for e in top2.data] == ["x2", "x3", "y1"]  # distinct texts only
    assert top2.stats["prompts_with_kept"] == 2
