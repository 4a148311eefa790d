"""What every layer shares: domain errors, the vocabulary, the category taxonomy, Swedish names."""
