"""How a domain is shifted: seeded functions that turn one domain into others.

`image_transforms` (covariate shift: photo blend, rotation, colour, inversion, noise), `label_priors`
(label shift: target priors and resampling to them), `class_sets` (partial, open-set and universal label
sets) and `domain_families` (many domains at once, for domain generalization).
"""
