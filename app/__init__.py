"""EST Lägesbild: the service."""
