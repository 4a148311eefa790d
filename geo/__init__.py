"""Geography with no web and no database: CRS handling, the stable grid, points, GeoJSON encoding."""
