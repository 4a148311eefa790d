"""Operations: demo data and the private development cluster."""
