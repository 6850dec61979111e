# The corpus programs run when imported; test_corpus.py runs them, so pytest's doctest collection
# (--doctest-modules) must not import them.
collect_ignore = ["corpus"]
