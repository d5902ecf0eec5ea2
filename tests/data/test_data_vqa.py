"""Official VQA answer normalisation, soft scores and the answer vocabulary."""

from __future__ import annotations

import pytest

from harness.data.vqa import answer_vocabulary, normalize_answer, soft_score, soft_scores, targets


@pytest.mark.parametrize(("raw", "expected"), [
    ("Yes", "yes"),
    ("Two", "2"),
    ("two dogs.", "2 dogs"),
    ("a dog", "dog"),
    ("The Red Car", "red car"),
    ("an apple!", "apple"),
    ("dont", "don't"),
    ("isnt it", "isn't it"),
    ("none", "0"),
    ("1,000", "1000"),
    ("3.5", "3.5"),
    ("left-hand side", "left hand side"),
    ("yes, it is", "yes it is"),
    ("  ten\t", "10"),
    ("t-shirt", "t shirt"),
])
def test_official_normalisation(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_soft_scores_from_counts() -> None:
    assert [soft_score(c) for c in range(6)] == [0.0, 0.3, 0.6, 0.9, 1.0, 1.0]
    votes = ["Two"] * 6 + ["2 "] + ["three"] * 2 + ["four"]
    assert soft_scores(votes) == {"2": 1.0, "3": 0.6, "4": 0.3}


def test_vocabulary_min_count_and_order() -> None:
    majors = ["yes"] * 12 + ["no"] * 9 + ["2"] * 5 + ["Two"] * 4 + ["cat"] * 8
    vocab = answer_vocabulary(majors, min_count=9)
    assert vocab == {"yes": 0, "2": 1, "no": 2}  # "Two" normalised into "2": 9; ties alphabetical
    labels, scores = targets(["yes", "yes", "cat", "no"], vocab)
    assert labels == [0, 2] and scores == [0.6, 0.3]  # "cat" is not in the vocabulary
