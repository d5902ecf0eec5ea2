"""Texts of the synthetic benchmark's tasks: VQA questions, NLVR2 statements, SNLI-VE hypotheses.

Design (tiny models, a few hundred steps): every answer needs the image, yes/no and true/false
answers are balanced, and some questions need word ORDER, not just the bag of words —
"is the red shape left of the blue shape?" and "is the blue shape left of the red shape?"
have opposite answers. Contextual text encoders can tell them apart; an embedding bag cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from harness.data.synthetic import COLOURS, NUMBER_WORDS, SHAPES, Obj, Scene, caption

YES, NO = "yes", "no"
Question = tuple[str, str, str]  # (question, answer, question type)


def vqa_answers(max_objects: int = 3) -> tuple[str, ...]:
    """The fixed answer vocabulary (digits, as the official VQA normalisation writes numbers)."""
    return (YES, NO, *[str(i) for i in range(max_objects + 1)], *COLOURS, *SHAPES)


def _ref(scene: Scene, obj: Obj) -> str | None:
    """A unique noun phrase for obj in its scene ("the red shape", "the square"), or None."""
    if scene.count_where(colour=obj.colour) == 1:
        return f"the {COLOURS[obj.colour]} shape"
    if scene.count_where(shape=obj.shape) == 1:
        return f"the {SHAPES[obj.shape]}"
    if scene.count_where(colour=obj.colour, shape=obj.shape) == 1:
        return f"the {COLOURS[obj.colour]} {SHAPES[obj.shape]}"
    return None


def _q_colour(scene: Scene, rng: np.random.Generator) -> Question | None:
    unique = [o for o in scene.objects if scene.count_where(shape=o.shape) == 1]
    if not unique:
        return None
    o = unique[int(rng.integers(len(unique)))]
    return f"what colour is the {SHAPES[o.shape]}?", COLOURS[o.colour], "colour"


def _q_shape(scene: Scene, rng: np.random.Generator) -> Question | None:
    unique = [o for o in scene.objects if scene.count_where(colour=o.colour) == 1]
    if not unique:
        return None
    o = unique[int(rng.integers(len(unique)))]
    return f"what shape is the {COLOURS[o.colour]} object?", SHAPES[o.shape], "shape"


def _q_count(scene: Scene, rng: np.random.Generator) -> Question | None:
    return "how many shapes are there?", str(scene.count), "count"


def _q_count_colour(scene: Scene, rng: np.random.Generator) -> Question | None:
    present = [o.colour for o in scene.objects]
    c = present[int(rng.integers(len(present)))] if rng.random() < 0.6 else int(rng.integers(len(COLOURS)))
    return f"how many {COLOURS[c]} shapes are there?", str(scene.count_where(colour=c)), "count_colour"


def _q_exists(scene: Scene, rng: np.random.Generator) -> Question | None:
    if rng.random() < 0.5:
        o = scene.objects[int(rng.integers(scene.count))]
        c, s = o.colour, o.shape
    else:
        absent = [(c, s) for c in range(len(COLOURS)) for s in range(len(SHAPES)) if not scene.has(c, s)]
        c, s = absent[int(rng.integers(len(absent)))]
    answer = YES if scene.has(c, s) else NO
    return f"is there a {COLOURS[c]} {SHAPES[s]}?", answer, "exists"


def _q_left_of(scene: Scene, rng: np.random.Generator) -> Question | None:
    """Word-order question: swapping the two phrases flips the answer."""
    pairs = [(a, b) for a in scene.objects for b in scene.objects
             if a is not b and _ref(scene, a) and _ref(scene, b)]
    if not pairs:
        return None
    a, b = pairs[int(rng.integers(len(pairs)))]
    relation = "left" if rng.random() < 0.5 else "right"
    truth = a.column < b.column if relation == "left" else a.column > b.column
    return f"is {_ref(scene, a)} {relation} of {_ref(scene, b)}?", YES if truth else NO, "left_of"


def _q_position(scene: Scene, rng: np.random.Generator) -> Question | None:
    if scene.count < 2:
        return None
    end = "leftmost" if rng.random() < 0.5 else "rightmost"
    o = scene.objects[0] if end == "leftmost" else scene.objects[-1]
    if rng.random() < 0.5:
        return f"what colour is the {end} shape?", COLOURS[o.colour], "position"
    return f"what shape is the {end} object?", SHAPES[o.shape], "position"


def _q_neighbour(scene: Scene, rng: np.random.Generator) -> Question | None:
    """Composition: find the referent, step one object left/right, name its colour."""
    options = []
    for i, o in enumerate(scene.objects):
        ref = _ref(scene, o)
        if ref and i > 0:
            options.append((f"what colour is the shape just left of {ref}?", scene.objects[i - 1]))
        if ref and i + 1 < scene.count:
            options.append((f"what colour is the shape just right of {ref}?", scene.objects[i + 1]))
    if not options:
        return None
    text, target = options[int(rng.integers(len(options)))]
    return text, COLOURS[target.colour], "neighbour"


# (generator, weight). Measured with the tiny METER model (width 64, 2+2 layers, 900 steps):
# composition ("neighbour": find the referent, step left/right, read the colour) is where
# MLM-pre-trained text encoders beat embeddings only (0.75 vs 0.60), so it leads the mix;
# colour is learnt early by every model; shape, count and pure left/right relations need more
# steps than the local grids give and stay a minority (they still separate longer runs).
QUESTION_TYPES: dict[str, tuple[Callable[[Scene, np.random.Generator], Question | None], float]] = {
    "colour": (_q_colour, 1.5),
    "shape": (_q_shape, 0.5),
    "count": (_q_count, 0.4),
    "count_colour": (_q_count_colour, 0.5),
    "exists": (_q_exists, 0.7),
    "left_of": (_q_left_of, 1.2),
    "position": (_q_position, 0.8),
    "neighbour": (_q_neighbour, 2.6),
}


def vqa_questions(scene: Scene, rng: np.random.Generator, k: int) -> list[Question]:
    """Up to k distinct questions about one scene, question types drawn by weight."""
    out: list[Question] = []
    for _ in range(k * 4):
        q = _weighted(QUESTION_TYPES, rng)(scene, rng)
        if q is not None and all(q[0] != seen[0] for seen in out):
            out.append(q)
        if len(out) == k:
            break
    return out


def annotator_answers(answer: str, qtype_answers: tuple[str, ...], rng: np.random.Generator,
                      n: int = 10, dissent: float = 0.3) -> list[str]:
    """Ten simulated human answers: unanimous, except that with probability `dissent` one or two
    annotators give another answer of the same kind. Soft scores then look like VQAv2's
    (1.0 for the answer, 0.3/0.6 for a stray one) without making wrong guesses pay much."""
    votes = [answer] * n
    wrong = [a for a in qtype_answers if a != answer]
    if wrong and rng.random() < dissent:
        for k in range(1 + int(rng.random() < 0.3)):
            votes[k] = wrong[int(rng.integers(len(wrong)))]
    return votes


def answer_family(qtype: str, answer: str, max_objects: int) -> tuple[str, ...]:
    if answer in (YES, NO):
        return (YES, NO)
    if answer in COLOURS:
        return COLOURS
    if answer in SHAPES:
        return SHAPES
    return tuple(str(i) for i in range(max_objects + 1))


# ---- NLVR2: two scenes + statement → true/false ------------------------------------------------
#
# Measured first (tiny METER, 300 VQA steps): colour facts are grounded within the local budget
# (colour 0.67, count_colour 0.66), while colour+shape conjunctions are not ("is there a red
# square?" 0.58 on a yes/no question, shape 0.41). The first NLVR2 design asked mostly for
# conjunctions and exact sums and stayed at its blind prior (52 % on 100 pairs); statements now
# combine per-image colour facts across the two images, as NLVR2's do.
#
# Why that mix still stayed at its blind prior (issue 18; tiny METER from the zoo, CLIP-ViT/32 +
# RoBERTa, 600 steps, one seed each, 400 test pairs, loaded machine). The pair path is sound: a
# collated batch holds the row's two images in order with its statement and label, the head reads
# both pooled features (4H), the two fused passes match separate calls. What stalls is a mix in
# which the text decides WHICH image's evidence counts, or with which sign:
#   - only "the left image contains a red shape" (the right image a distractor): 86 % at step 300,
#     98.5 % at 600 (blind 56 %) — faster than SNLI-VE (50 % at 300, 87 % at 600);
#   - the same with the left image as both images: 82 % / 98 %;
#   - "the left/right image contains …", either side equally often: 51 % / 52 % (blind 48 %);
#   - the earlier mix (both / at least one / neither / either side / more / shape): 56 % (blind 55.5 %);
#   - left 44 %, right 11 %, both 22 %, at least one 22 %: 54 % at step 300, 73 % at 450 (blind 54 %);
#   - the same with "neither", shapes and the count comparison as a fifth of it: 52 % / 50 %.
# The fusion grounds a colour word only while the evidence of an image pushes the label one way in
# most examples; when the side word ("left"/"right") or the quantifier ("neither") flips which
# image counts or with which sign, the pushes cancel and the fusion stays on its plateau for the
# whole budget. The escape is fragile: the mix of 44 % left / 11 % right / 22 % both / 22 % at least
# one reached 80 % at step 600 with one build of the tiny zoo, but 55 % (blind 51 %) with the
# rebuilt zoo (issue 19 recipes), and 67 % left with the rest as above stayed at 50 %, while the
# left image alone reached 99 % at step 450 with both zoos. So the local task asks only about the
# left image ("the left image contains a red shape", NLVR2's commonest form): both images still go
# through the fusion and the head reads both pooled features, and must learn to ignore the right
# one; the composition across the two images (right, both, at least one, neither, the mirrored
# word-order comparison) is more than this budget grounds. The test set: 400 pairs (±2.5 points).

def _colour_pick(a: Scene, b: Scene, rng: np.random.Generator) -> int:
    """A colour present in one of the images 60 % of the time (else any colour), so that
    "contains" statements are true and false about equally often."""
    colours = [o.colour for o in a.objects + b.objects]
    return colours[int(rng.integers(len(colours)))] if rng.random() < 0.6 else int(rng.integers(len(COLOURS)))


def _nlvr2_both(a: Scene, b: Scene, rng: np.random.Generator) -> tuple[str, bool]:
    c = _colour_pick(a, b, rng)
    return f"both images contain a {COLOURS[c]} shape", a.has(colour=c) and b.has(colour=c)


def _nlvr2_any(a: Scene, b: Scene, rng: np.random.Generator) -> tuple[str, bool]:
    c = _colour_pick(a, b, rng)
    return f"at least one image contains a {COLOURS[c]} shape", a.has(colour=c) or b.has(colour=c)


def _nlvr2_neither(a: Scene, b: Scene, rng: np.random.Generator) -> tuple[str, bool]:
    c = _colour_pick(a, b, rng)
    return f"neither image contains a {COLOURS[c]} shape", not (a.has(colour=c) or b.has(colour=c))


def _nlvr2_image(scene: Scene, side: str, c: int) -> tuple[str, bool]:
    return f"the {side} image contains a {COLOURS[c]} shape", scene.has(colour=c)


def _nlvr2_side(a: Scene, b: Scene, rng: np.random.Generator) -> tuple[str, bool]:
    c = _colour_pick(a, b, rng)
    side, scene = ("left", a) if rng.random() < 0.5 else ("right", b)
    return _nlvr2_image(scene, side, c)


def _nlvr2_left(a: Scene, b: Scene, rng: np.random.Generator) -> tuple[str, bool]:
    return _nlvr2_image(a, "left", _colour_pick(a, b, rng))


def _nlvr2_more(a: Scene, b: Scene, rng: np.random.Generator) -> tuple[str, bool]:
    """Word order: the mirrored sentence has the same words and the opposite truth."""
    if a.count == b.count:  # a tie makes both wordings false: ask about a colour instead
        return _nlvr2_side(a, b, rng)
    first, second = ("left", "right") if rng.random() < 0.5 else ("right", "left")
    x, y = (a, b) if first == "left" else (b, a)
    return f"the {first} image has more shapes than the {second} image", x.count > y.count


def _nlvr2_shape(a: Scene, b: Scene, rng: np.random.Generator) -> tuple[str, bool]:
    s = int(rng.integers(len(SHAPES)))
    return f"both images contain a {SHAPES[s]}", a.has(shape=s) and b.has(shape=s)


StatementKinds = dict[str, tuple[Callable[[Scene, Scene, np.random.Generator], tuple[str, bool]], float]]

# The task's mix (see above): statements about the left image only. The other kinds stay defined
# in the text corpus's mix.
NLVR2_KINDS: StatementKinds = {
    "left": (_nlvr2_left, 1.0),
}

# The text pre-training corpus (``scene_text``) keeps the mix the tiny zoo's encoders were built
# from: the zoo's hash covers the corpus (``harness.models.zoo.inputs_digest``), so changing it
# would name a new zoo and retrain every tiny text encoder. Same words as the task's mix, other weights.
CORPUS_NLVR2_KINDS: StatementKinds = {
    "both": (_nlvr2_both, 1.0),
    "at_least_one": (_nlvr2_any, 1.0),
    "neither": (_nlvr2_neither, 0.6),
    "side": (_nlvr2_side, 1.0),
    "more": (_nlvr2_more, 0.8),
    "shape": (_nlvr2_shape, 0.4),
}


def _weighted(kinds: dict[str, tuple[Callable[..., Any], float]], rng: np.random.Generator) -> Callable[..., Any]:
    names = list(kinds)
    cumulative = np.cumsum([kinds[n][1] for n in names])
    return kinds[names[int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))]][0]


def nlvr2_statement(a: Scene, b: Scene, rng: np.random.Generator,
                    kinds: StatementKinds = NLVR2_KINDS) -> tuple[str, int]:
    """A statement with a balanced label: draw the kind and the label first, then statements of
    that kind until one has the label. Balancing within the kind keeps each wording's own label
    prior near 50 % (balancing across kinds let the text alone predict 65 %)."""
    make = _weighted(kinds, rng)
    want = bool(rng.random() < 0.5)
    text, truth = make(a, b, rng)
    for _ in range(30):
        if truth == want:
            break
        text, truth = make(a, b, rng)
    return text, int(truth)


# ---- SNLI-VE: scene + hypothesis → 0 contradiction / 1 neutral / 2 entailment -------------------
#
# Same finding as for NLVR2: the first design's claims were colour+shape and size+shape
# conjunctions and stayed near the blind prior. Claims are now mostly about colours and counts
# ("there is a red shape", "there are two shapes"), a conjunction claim stays a minority; neutral
# hypotheses give a present colour an unobservable quality, contradicting ones an absent colour.

QUALITIES = ("made of wood", "made of metal", "heavy", "brand new", "painted by hand")
_CLAIM_KINDS = (("colour", 0.6), ("count", 0.25), ("conjunction", 0.15))


def _claim(scene: Scene, rng: np.random.Generator, truth: bool) -> str:
    """An observable claim that is true (or false) of the scene. The kind is drawn first and kept,
    so that true and false claims have the same mix of kinds (else the wording gives the label away)."""
    weights = np.array([w for _, w in _CLAIM_KINDS])
    kind = _CLAIM_KINDS[int(rng.choice(len(_CLAIM_KINDS), p=weights / weights.sum()))][0]
    for _ in range(30):
        if kind == "colour":
            c = int(rng.integers(len(COLOURS)))
            if scene.has(colour=c) == truth:
                return f"there is a {COLOURS[c]} shape"
        elif kind == "count":
            n = scene.count if truth else int(rng.integers(1, scene.max_objects + 1))
            if (n == scene.count) == truth:
                return f"there {'is' if n == 1 else 'are'} {NUMBER_WORDS[n]} shape{'' if n == 1 else 's'}"
        else:
            o = scene.objects[int(rng.integers(scene.count))]
            c, s = (o.colour, o.shape) if truth else (int(rng.integers(len(COLOURS))), int(rng.integers(len(SHAPES))))
            if scene.has(c, s) == truth:
                return f"there is a {COLOURS[c]} {SHAPES[s]}"
    if not truth:
        return "there are no shapes"
    n = scene.count
    return f"there {'is' if n == 1 else 'are'} {NUMBER_WORDS[n]} shape{'' if n == 1 else 's'}"


def snli_hypothesis(scene: Scene, rng: np.random.Generator) -> tuple[str, int]:
    """Labels 25% entailment, 25% neutral, 50% contradiction, so that the unobservable quality
    words ("made of wood") narrow the label to two options but never give it away."""
    u = rng.random()
    quality = QUALITIES[int(rng.integers(len(QUALITIES)))]
    if u < 0.25:
        return _claim(scene, rng, True), 2
    if u < 0.5:
        o = scene.objects[int(rng.integers(scene.count))]
        return f"the {COLOURS[o.colour]} shape is {quality}", 1
    if u < 0.75:
        return _claim(scene, rng, False), 0
    absent = [c for c in range(len(COLOURS)) if not scene.has(colour=c)]
    if not absent:  # every colour is in the picture (max_objects ≥ 5)
        return _claim(scene, rng, False), 0
    c = absent[int(rng.integers(len(absent)))]
    return f"the {COLOURS[c]} shape is {quality}", 0


def scene_text(scene: Scene, other: Scene, rng: np.random.Generator) -> str:
    """One text about a scene: mostly a caption, else a question with its answer, an NLVR2
    statement (with `other` as the second image) or an SNLI-VE hypothesis."""
    u = rng.random()
    if u < 0.55:
        return caption(scene, rng)
    if u < 0.8:
        qs = vqa_questions(scene, rng, 1)
        return f"{qs[0][0]} {qs[0][1]}" if qs else caption(scene, rng)
    if u < 0.9:
        return nlvr2_statement(scene, other, rng, CORPUS_NLVR2_KINDS)[0]
    return snli_hypothesis(scene, rng)[0]


def corpus_texts(scenes: list[Scene], rng: np.random.Generator) -> list[str]:
    """One text per scene (for MLM pre-training)."""
    return [scene_text(scene, scenes[(i + 1) % len(scenes)], rng) for i, scene in enumerate(scenes)]


def corpus_pairs(scenes: list[Scene], rng: np.random.Generator) -> list[tuple[str, str]]:
    """Two consecutive texts per scene — a caption, then another text about the same scene — the
    "segments" of next-sentence and sentence-order prediction."""
    return [(caption(scene, rng), scene_text(scene, scenes[(i + 1) % len(scenes)], rng))
            for i, scene in enumerate(scenes)]
