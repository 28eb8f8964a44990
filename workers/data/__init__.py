"""Training data for the trainer: the synthetic biographies corpus, local corpora, tokenizers."""
