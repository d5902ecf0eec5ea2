"""Synthetic shape scenes: deterministic from a seed, rendered with numpy, captioned in words.

A scene holds 1..max_objects big, simple shapes, each in its own horizontal column, so
"left of" is never ambiguous and every object spans several 8-pixel patches at 64×64.
Objects differ in shape, colour and size; their vertical position is random. The texts
(captions here, questions in :mod:`harness.data.synthetic_tasks`) are generated from the
same scenes, so every task form of the benchmark agrees with the pixels.

    images, labels = render_images(seed=0, n=1000, image_size=64)  # uint8 [N,64,64,3]
    corpus = caption_corpus(seed=0, n=5000)                         # list[str]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

SHAPES: tuple[str, ...] = ("square", "circle", "triangle")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple")
SIZES: tuple[str, ...] = ("small", "large")
RGB = np.array([[220, 40, 40], [40, 200, 60], [50, 80, 230], [235, 215, 40], [170, 60, 200]], dtype=np.int16)
# Radius as a fraction of the image side. With 3 columns a large shape (32% of the side across)
# just fits its column; a small one still spans about two 8-pixel patches at 64×64.
RADIUS = (0.11, 0.16)
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")


@dataclass(frozen=True)
class Obj:
    shape: int
    colour: int
    size: int
    column: int  # 0 = leftmost column; objects are sorted by column
    y: float  # vertical centre in [0, 1]

    def phrase(self, with_size: bool = True) -> str:
        size = f"{SIZES[self.size]} " if with_size else ""
        return f"{size}{COLOURS[self.colour]} {SHAPES[self.shape]}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]  # left to right
    max_objects: int

    @property
    def count(self) -> int:
        return len(self.objects)

    def has(self, colour: int | None = None, shape: int | None = None) -> bool:
        return self.count_where(colour, shape) > 0

    def count_where(self, colour: int | None = None, shape: int | None = None) -> int:
        return sum(1 for o in self.objects
                   if (colour is None or o.colour == colour) and (shape is None or o.shape == shape))


def scene_rng(seed: int, stream: str) -> np.random.Generator:
    """One independent, reproducible random stream per (seed, purpose)."""
    salt = int.from_bytes(hashlib.blake2b(stream.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng([seed, salt])


def sample_scenes(rng: np.random.Generator, n: int, max_objects: int = 3) -> list[Scene]:
    """n random scenes; every object gets its own column (columns = max_objects)."""
    # P(k objects) ∝ k: most scenes have two or more objects, so relations can be asked.
    weights = np.arange(1, max_objects + 1, dtype=np.float64)
    counts = rng.choice(np.arange(1, max_objects + 1), size=n, p=weights / weights.sum())
    shapes = rng.integers(0, len(SHAPES), size=(n, max_objects))
    colours = rng.integers(0, len(COLOURS), size=(n, max_objects))
    sizes = rng.integers(0, len(SIZES), size=(n, max_objects))
    ys = rng.uniform(0.25, 0.75, size=(n, max_objects))
    scenes = []
    for i in range(n):
        columns = np.sort(rng.choice(max_objects, size=counts[i], replace=False))
        objs = tuple(Obj(int(shapes[i, k]), int(colours[i, k]), int(sizes[i, k]), int(c), float(ys[i, k]))
                     for k, c in enumerate(columns))
        scenes.append(Scene(objs, max_objects))
    return scenes


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    coords = np.arange(size, dtype=np.float32) + 0.5
    return coords[:, None], coords[None, :]


def _shape_mask(shape: int, dy: np.ndarray, dx: np.ndarray, r: float) -> np.ndarray:
    if shape == 0:  # square: same area impression as the circle
        return (np.abs(dx) <= 0.88 * r) & (np.abs(dy) <= 0.88 * r)
    if shape == 1:  # circle
        return dx * dx + dy * dy <= r * r
    # triangle, apex up: half-width grows from 0 at the top to r at the base
    return (dy >= -r) & (dy <= r) & (np.abs(dx) <= 0.5 * (dy + r))


def render_scenes(scenes: list[Scene], image_size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [N,S,S,3]: dark noisy background, each object a flat, slightly jittered colour."""
    n, s = len(scenes), image_size
    out = np.empty((n, s, s, 3), dtype=np.uint8)
    yy, xx = _grid(s)
    noise = rng.integers(0, 24, size=(n, 1, 1, 3), dtype=np.int16)
    jitter = rng.integers(-20, 21, size=(n, 8, 3), dtype=np.int16)
    pixel_noise = rng.integers(0, 12, size=(s, s, 3), dtype=np.uint8)
    for i, scene in enumerate(scenes):
        img = np.empty((s, s, 3), dtype=np.uint8)
        img[:] = (30 + noise[i]).astype(np.uint8)
        img += np.roll(pixel_noise, shift=i * 7, axis=(0, 1))[: s, : s]  # cheap per-image texture
        for k, obj in enumerate(scene.objects):
            r = RADIUS[obj.size] * s
            cx = (obj.column + 0.5) * s / scene.max_objects
            cy = obj.y * s
            y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, s)
            x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, s)
            mask = _shape_mask(obj.shape, yy[y0:y1] - cy, xx[:, x0:x1] - cx, r)
            colour = np.clip(RGB[obj.colour] + jitter[i, k % 8], 0, 255).astype(np.uint8)
            img[y0:y1, x0:x1][mask] = colour
        out[i] = img
    return out


def scene_labels(scenes: list[Scene]) -> dict[str, np.ndarray]:
    """Integer labels per image, class indices from 0 (see :func:`label_classes`)."""
    n = len(scenes)
    first = [s.objects[0] for s in scenes]
    labels = {
        "count": np.array([s.count - 1 for s in scenes], dtype=np.int64),
        "shape": np.array([o.shape for o in first], dtype=np.int64),
        "colour": np.array([o.colour for o in first], dtype=np.int64),
        "size": np.array([o.size for o in first], dtype=np.int64),
        "shapes_present": np.zeros((n, len(SHAPES)), dtype=np.int64),
        "colours_present": np.zeros((n, len(COLOURS)), dtype=np.int64),
    }
    for i, s in enumerate(scenes):
        for o in s.objects:
            labels["shapes_present"][i, o.shape] = 1
            labels["colours_present"][i, o.colour] = 1
    return labels


def label_classes(max_objects: int = 3) -> dict[str, tuple[str, ...]]:
    """Class names of each label in :func:`render_images` ("shape"/"colour"/"size" = leftmost object;
    "*_present" are multi-hot [N,C])."""
    return {
        "count": tuple(NUMBER_WORDS[1: max_objects + 1]),
        "shape": SHAPES,
        "colour": COLOURS,
        "size": SIZES,
        "shapes_present": SHAPES,
        "colours_present": COLOURS,
    }


def layout_labels(scenes: list[Scene]) -> dict[str, np.ndarray]:
    """The larger label set: colour, shape and size of the object in each column (last class = empty)."""
    columns = scenes[0].max_objects if scenes else 0
    out = {f"column{c}_{key}": np.full(len(scenes), n, dtype=np.int64)
           for c in range(columns) for key, n in (("colour", len(COLOURS)), ("shape", len(SHAPES)),
                                                  ("size", len(SIZES)))}
    for i, s in enumerate(scenes):
        for o in s.objects:
            out[f"column{o.column}_colour"][i] = o.colour
            out[f"column{o.column}_shape"][i] = o.shape
            out[f"column{o.column}_size"][i] = o.size
    return out


def render_scene_set(seed: int, n: int, image_size: int, max_objects: int = 3) -> tuple[np.ndarray, list[Scene]]:
    """The scenes of :func:`render_images` and their pixels (for labels beyond the default ones)."""
    scenes = sample_scenes(scene_rng(seed, "scenes"), n, max_objects)
    return render_scenes(scenes, image_size, scene_rng(seed, "pixels")), scenes


def render_images(seed: int, n: int, image_size: int, max_objects: int = 3) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """n scenes rendered to uint8 [N,H,W,3] plus per-image integer labels (for image pre-training).

    Labels: "count" (objects − 1), "shape"/"colour"/"size" of the leftmost object, and multi-hot
    "shapes_present" [N,3] / "colours_present" [N,5]. Deterministic in (seed, n, image_size)."""
    images, scenes = render_scene_set(seed, n, image_size, max_objects)
    return images, scene_labels(scenes)


# ---- captions ---------------------------------------------------------------------------------

_JOINERS = ("left of", "to the left of")


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """One caption naming every object; word order carries the left-to-right order."""
    phrases = [o.phrase(with_size=bool(rng.random() < 0.7)) for o in scene.objects]
    style = int(rng.integers(0, 4))
    if scene.count == 1:
        return ("a " + phrases[0], "there is one " + phrases[0], "a single " + phrases[0],
                "one " + phrases[0] + " on its own")[style]
    if style == 0:
        return "from left to right: " + ", ".join("a " + p for p in phrases)
    if style == 1:
        return "from right to left: " + ", ".join("a " + p for p in reversed(phrases))
    joiner = _JOINERS[int(rng.integers(0, len(_JOINERS)))]
    if style == 2:  # a left of b left of c
        return f" {joiner} ".join("a " + p for p in phrases)
    right = " right of ".join("a " + p for p in reversed(phrases))
    return f"{NUMBER_WORDS[scene.count]} shapes: {right}"


def captions_for(scenes: list[Scene], per_image: int, rng: np.random.Generator) -> list[list[str]]:
    """per_image distinct-as-possible captions per scene."""
    out = []
    for scene in scenes:
        caps: list[str] = []
        for _ in range(per_image * 4):
            c = caption(scene, rng)
            if c not in caps:
                caps.append(c)
            if len(caps) == per_image:
                break
        while len(caps) < per_image:
            caps.append(caps[len(caps) % max(1, len(caps))])
        out.append(caps)
    return out


def caption_corpus(seed: int, n: int, max_objects: int = 3) -> list[str]:
    """n synthetic captions (deterministic), e.g. for pre-training tiny text encoders with MLM.

    Mixes captions with the benchmark's questions and statements so a tokenizer or MLM
    model built on it knows every word the tasks use."""
    from harness.data.synthetic_tasks import corpus_texts

    rng = scene_rng(seed, "corpus")
    scenes = sample_scenes(rng, n, max_objects)
    return corpus_texts(scenes, rng)


def caption_pairs(seed: int, n: int, max_objects: int = 3) -> list[tuple[str, str]]:
    """n pairs of consecutive texts about one scene each (for next-sentence / sentence-order
    pre-training of tiny text encoders); deterministic."""
    from harness.data.synthetic_tasks import corpus_pairs

    rng = scene_rng(seed, "pairs")
    return corpus_pairs(sample_scenes(rng, n, max_objects), rng)
