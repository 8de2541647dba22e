"""Transfer learning of the cardiac base model to a new domain (7T): subsets, R/TL/TL2, evaluation."""
