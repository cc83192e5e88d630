import pytest

from sharpen.builders.pairs import preference_pairs, spin_pairs
from sharpen.errors import UserError


def test_best_vs_worst_per_prompt_with_margin_filter(make_scored):
    batch = [
        make_scored("a", 0, "a0", 0.2), make_scored("a", 1, "a1", 0.9), make_scored("a", 2, "a2", 0.1),
        make_scored("b", 0, "b0", 0.5), make_scored("b", 1, "b1", 0.45),    # gap 0.05
        make_scored("c", 0, "c0", 1.0), make_scored("c", 1, "c1", 1.0),     # gap 0: no preference
    ]
    built = preference_pairs(batch, min_margin=0.0)
    assert [(p.prompt, p.chosen, p.rejected) for p in built.data] == [("qa=", "a1", "a2"), ("qb=", "b0", "b1")]
    assert built.data[0].margin == pytest.approx(0.8)
    assert built.stats == {"pairs": 2, "filtered_by_margin": 1}
    strict = preference_pairs(batch, min_margin=0.1)
    assert [p.chosen for p in strict.data] == ["a1"] and strict.stats["filtered_by_margin"] == 2


def test_ties_are_broken_deterministically_and_identical_texts_never_pair(make_scored):
    batch = [make_scored("a", 0, "a0", 1.0), make_scored("a", 1, "a1", 1.0),
             make_scored("a", 2, "a2", 0.0), make_scored("a", 3, "a3", 0.0)]
    [pair] = preference_pairs(list(reversed(batch))).data
    assert (pair.chosen, pair.rejected) == ("a0", "a3")  # earliest best, latest worst, whatever the input order
    same = [make_scored("a", 0, "t", 1.0), make_scored("a", 1, "t", 0.9999)]  # float noise on one text
    assert preference_pairs(same).data == []


def test_spin_pairs_gold_vs_own_sample(make_scored):
    batch = [
        make_scored("a", 0, "gold-a", 1.0, reference="gold-a"), make_scored("a", 1, "own-a", 0.0, reference="gold-a"),
        make_scored("b", 0, "own-b", 0.0, reference="gold-b"),
        make_scored("c", 0, "gold-c", 1.0, reference="gold-c"),
        make_scored("d", 0, "own-d", 0.0, reference=None),
    ]
    built = spin_pairs(batch)
    assert [(p.prompt, p.chosen, p.rejected) for p in built.data] == [("qa=", "gold-a", "own-a"), ("qb=", "gold-b", "own-b")]
    assert built.stats == {"pairs": 2, "skipped_identical": 1, "no_reference": 1}


def test_spin_pairs_without_any_reference_is_a_user_error(make_scored):
    with pytest.raises(UserError, match="Prompt.reference"):
        spin_pairs([make_scored("a", 0, "x", 0.0)])
