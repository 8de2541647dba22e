"""Random appearance from label maps: never the same twice, labels aligned, seeded."""

from __future__ import annotations

import itertools

import torch

from hpc_seg.cardiac.train.appearance import PAD, AppearanceSpec, render_batch

SIZE = 48
CLASS_OF = torch.tensor([0, 1, 2, 0, 1] + [0] * 250 + [0])   # ids 1 and 4 are LV, 2 myocardium


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


def test_one_label_map_never_gets_the_same_appearance_twice():
    structures, masks = _batch(16)
    g = torch.Generator().manual_seed(0)
    clean = AppearanceSpec().without_appearance_noise()
    looks = []
    for _ in range(4):     # 64 renderings of one map: four batches from one generator
        images, _, ids = render_batch(structures, masks, g, clean)
        for i in range(len(images)):
            looks.append(torch.stack([images[i, 0][ids[i] == s].mean() for s in range(5)]))
    for a, b in itertools.combinations(looks, 2):
        assert (a - b).abs().max() > 1e-3
    full, _, _ = render_batch(structures, masks, torch.Generator().manual_seed(1))
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


def test_rendering_is_deterministic_for_a_seed():
    structures, masks = _batch(4)
    a = render_batch(structures, masks, torch.Generator().manual_seed(5))
    b = render_batch(structures, masks, torch.Generator().manual_seed(5))
    c = render_batch(structures, masks, torch.Generator().manual_seed(6))
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
