"""Video-text retrieval methods of the seed papers: ViSERN (region graph reasoning) and ProTA
(probabilistic token aggregation), both designed from abstracts and secondary summaries
(shared/METHODS.md §2, §3): the modules say which choices follow a source and which are ours."""
