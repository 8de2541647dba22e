"""Random appearance from label maps: never the same twice, labels aligned, seeded; per structure
or per tissue."""

from __future__ import annotations

import itertools
from dataclasses import replace

import torch

import pytest

from hpc_seg.cardiac.train.appearance import (PAD, AppearanceSpec, render_batch,
                                              tissue_groups)

SIZE = 48
CLASS_OF = torch.tensor([0, 1, 2, 0, 1] + [0] * 250 + [0])   # ids 1 and 4 are LV, 2 myocardium
# The test map's names as structures.json gives them: papillary muscle (4) is the myocardium's
# tissue (2); air, blood and the body are tissues of their own.
NAMES = {0: "background", 1: "lv_blood", 2: "lv_myocardium", 3: "soft_tissue",
         4: "lv_papillary_trabeculae"}
GROUPINGS = {"per structure": None, "per tissue": tissue_groups(NAMES)}


def _label_map() -> torch.Tensor:
    """Five structures, each well above 0.5 % of the field of view, and padding rows (PAD)."""
    r, c = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    s = torch.full((SIZE, SIZE), 3, dtype=torch.long)          # "body"
    s[c < 10] = 0                                               # "air"
    d = ((r - 24) ** 2 + (c - 28) ** 2).float().sqrt()
    s[d < 12] = 2                                               # myocardium
    s[d < 8] = 1                                                # LV blood
    s[(d < 8) & (r < 22) & (c < 26)] = 4                        # papillary muscle (LV)
    s[:4] = PAD
    s[-4:] = PAD
    return s


def _batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    s = _label_map().expand(n, SIZE, SIZE).clone()
    return s, CLASS_OF[s]


@pytest.mark.parametrize("grouping", GROUPINGS)
def test_one_label_map_never_gets_the_same_appearance_twice(grouping):
    structures, masks = _batch(16)
    g = torch.Generator().manual_seed(0)
    clean = AppearanceSpec().without_appearance_noise()
    looks = []
    for _ in range(4):     # 64 renderings of one map: four batches from one generator
        images, _, ids = render_batch(structures, masks, g, clean, GROUPINGS[grouping])
        for i in range(len(images)):
            looks.append(torch.stack([images[i, 0][ids[i] == s].mean() for s in range(5)]))
    for a, b in itertools.combinations(looks, 2):
        assert (a - b).abs().max() > 1e-3
    full, _, _ = render_batch(structures, masks, torch.Generator().manual_seed(1),
                              groups=GROUPINGS[grouping])
    for a, b in itertools.combinations(full, 2):
        assert not torch.allclose(a, b)


def test_each_structure_is_exactly_its_deformed_labels_pixels_and_the_mask_follows():
    structures, masks = _batch(8)
    images, out_masks, ids = render_batch(structures, masks, torch.Generator().manual_seed(2),
                                          AppearanceSpec().without_appearance_noise())
    assert not torch.equal(ids, structures)             # it was deformed ...
    assert torch.equal(out_masks, CLASS_OF[ids])        # ... and the mask with the structures
    for i in range(len(images)):
        img, lab = images[i, 0], ids[i]
        assert bool((img[lab == PAD] == 0).all())       # outside the field of view stays 0
        values = {}
        for s in range(5):
            grey = img[lab == s].unique()
            assert grey.numel() == 1, (i, s)            # one grey value per structure ...
            values[s] = float(grey)
        assert len(set(values.values())) == 5           # ... and a different one for each
        for s, v in values.items():                     # so the grey value finds the structure
            assert torch.equal(img == v, lab == s)


@pytest.mark.parametrize("grouping", GROUPINGS)
def test_rendering_is_deterministic_for_a_seed(grouping):
    structures, masks = _batch(4)
    groups = GROUPINGS[grouping]
    a = render_batch(structures, masks, torch.Generator().manual_seed(5), groups=groups)
    b = render_batch(structures, masks, torch.Generator().manual_seed(5), groups=groups)
    c = render_batch(structures, masks, torch.Generator().manual_seed(6), groups=groups)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0])
    images = a[0]
    assert images.shape == (4, 1, SIZE, SIZE) and images.dtype == torch.float32
    assert float(images.min()) >= 0 and float(images.max()) <= 1


def test_full_rendering_adds_texture_blur_bias_and_noise_inside_structures():
    structures, masks = _batch(8)
    images, _, ids = render_batch(structures, masks, torch.Generator().manual_seed(3))
    spread = [float(images[i, 0][ids[i] == 3].std()) for i in range(8)]
    assert min(spread) > 0 and sum(s > 0.01 for s in spread) >= 6


def test_tissue_groups_join_the_named_tissues_and_leave_every_other_id_alone():
    names = {0: "background", 1: "lv_blood", 2: "lv_myocardium", 3: "rv_blood",
             4: "lv_papillary_trabeculae", 5: "rv_wall", 6: "atria_aortic_root",
             7: "descending_aorta", 8: "pericardial_fat", 9: "body_fat", 10: "body_wall_muscle",
             11: "lungs", 12: "liver", 20: "a user's own name"}
    g = tissue_groups(names)
    assert g.shape == (256,)
    blood, muscle, fat = {1, 3, 6, 7}, {2, 4, 5, 10}, {8, 9}
    for tissue in (blood, muscle, fat):
        assert len({int(g[i]) for i in tissue}) == 1
    assert len({int(g[min(t)]) for t in (blood, muscle, fat)}) == 3
    for own in (0, 11, 12, 20, 13, 255):      # named but no tissue, unnamed, PAD: themselves
        assert int(g[own]) == own


def test_a_tissues_structures_share_one_grey_value_and_tissues_differ():
    """Without jitter and noise, papillary muscle (4) looks exactly like myocardium (2), as on a
    scanner, while the other tissues keep grey values of their own; with jitter they differ a
    little (at most a few jitter standard deviations)."""
    structures, masks = _batch(8)
    groups = GROUPINGS["per tissue"]
    images, _, ids = render_batch(structures, masks, torch.Generator().manual_seed(4),
                                  AppearanceSpec().without_appearance_noise(), groups)
    for i in range(len(images)):
        grey = {s: images[i, 0][ids[i] == s].unique() for s in range(5)}
        assert all(v.numel() == 1 for v in grey.values())
        assert torch.equal(grey[2], grey[4])
        assert len({float(grey[s]) for s in (0, 1, 2, 3)}) == 4
    jitter = replace(AppearanceSpec().without_appearance_noise(), max_group_jitter=0.05)
    images, _, ids = render_batch(structures, masks, torch.Generator().manual_seed(4), jitter,
                                  groups)
    gaps = torch.stack([images[i, 0][ids[i] == 2].mean() - images[i, 0][ids[i] == 4].mean()
                        for i in range(len(images))]).abs()
    assert float(gaps.max()) > 0
    # Normalisation scales the means by up to 1 / (the 99.5th percentile), hence the margin.
    assert float(gaps.max()) < 0.5
