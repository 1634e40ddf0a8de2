"""The library: what a transfer-learning method is made of, with no chapter or classroom in it.

``data`` (where images come from, how a domain is shifted, where files are stored) -> ``models`` ->
``modules`` (shared blocks: gradient reversal, entropy, colour randomisation, ...) -> ``methods``
(one file per family) -> ``train`` and ``metrics``; ``plots`` draws what they produce.
"""
