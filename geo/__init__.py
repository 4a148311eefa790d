"""Geography with no web and no database: the stable grid, points, CRS and GeoJSON helpers."""
