"""What goes out to people: charts, and next the weekly report."""
