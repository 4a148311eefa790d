"""OUT: the map page for ledningsgrupper, its login and the week's picture it reads."""
